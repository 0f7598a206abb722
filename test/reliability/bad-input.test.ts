// Hostile input: every case of bad-input.cases.ts, sent byte for byte over a raw TCP connection
// to a server process with IDLE_TIMEOUT=2s and the default type policy. Each must get the answer
// the table says (status and error code), and afterwards the server must be healthy, its memory
// back near its baseline, and no record left half-made.
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFile, waitForFinal } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { waitFor } from '../support/ports.js';
import { serverEnv, spawnServer, type ChildServer } from '../support/server.js';
import { CASES, TUS, type BadInputCase, type BadRequest } from './bad-input.cases.js';
import { filesUnder, formatMiB, MiB, reportIfDied, rssOf, sleep } from './support.js';

interface RawResponse {
  status: number | 'closed';
  headers: Record<string, string>;
  body: string;
  /** From the last byte the client sent to the server closing the connection. */
  closedAfterMs: number;
}

function parseResponse(bytes: Buffer): Omit<RawResponse, 'closedAfterMs'> {
  const end = bytes.indexOf('\r\n\r\n');
  if (bytes.length === 0 || end < 0) return { status: 'closed', headers: {}, body: '' };
  const [statusLine, ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = bytes.subarray(end + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const out: Buffer[] = [];
    let at = 0;
    for (;;) {
      const lineEnd = body.indexOf('\r\n', at);
      if (lineEnd < 0) break;
      const length = parseInt(body.subarray(at, lineEnd).toString(), 16);
      if (!length) break;
      out.push(body.subarray(lineEnd + 2, lineEnd + 2 + length));
      at = lineEnd + 2 + length + 2;
    }
    body = Buffer.concat(out);
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, body: body.toString('utf8') };
}

/** Sends one request exactly as described and reads until the server closes the connection. */
function send(port: number, head: Buffer, request: BadRequest): Promise<RawResponse> {
  const body = request.body === undefined ? null : Buffer.from(request.body);
  const delivery = request.delivery ?? 'whole';
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    let lastSentAt = Date.now();
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const parsed = delivery !== 'whole' && delivery !== 'chunked' && delivery.then === 'close' ? { status: 'closed' as const, headers: {}, body: '' } : parseResponse(Buffer.concat(received));
      resolve({ ...parsed, closedAfterMs: Date.now() - lastSentAt });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      finish();
    }, 20_000);
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', () => {}); // a server that answers early and closes (431) resets our write
    socket.on('close', finish);
    socket.on('connect', () => {
      socket.write(head);
      if (body === null) return;
      if (delivery === 'chunked') {
        socket.write(`${body.length.toString(16)}\r\n`);
        socket.write(body);
        socket.write('\r\n0\r\n\r\n');
      } else if (delivery === 'whole') {
        socket.write(body);
      } else {
        if (delivery.sendBytes > 0) socket.write(body.subarray(0, delivery.sendBytes));
        lastSentAt = Date.now();
        // "close": hang up once the bytes are surely on their way; "stall": wait for the server.
        if (delivery.then === 'close') setTimeout(() => socket.destroy(), 300);
      }
      lastSentAt = Date.now();
    });
  });
}

function headOf(request: BadRequest, path: string): Buffer {
  if (request.rawHead) {
    const at = request.rawHead.indexOf('{upload}');
    return at < 0 ? request.rawHead : Buffer.concat([request.rawHead.subarray(0, at), Buffer.from(path), request.rawHead.subarray(at + '{upload}'.length)]);
  }
  // AUTH_MODE=none answers loopback names only (src/http/origin-policy.ts).
  const lines = [`${request.method} ${path} HTTP/1.1`, 'Host: localhost', 'Connection: close'];
  for (const [name, value] of Object.entries(request.headers ?? {})) lines.push(`${name}: ${value}`);
  if (request.body !== undefined) {
    lines.push(request.delivery === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${Buffer.byteLength(request.body)}`);
  }
  // Header values are written as latin1 bytes: a test that wants other bytes uses rawHead.
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

describe('bad input', () => {
  let db: TestDatabase;
  let server: ChildServer | undefined;
  let env: Record<string, string>;
  let baseline = 0;
  const created: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('rel');
    env = await serverEnv({
      databaseUrl: db.url,
      storage: 'file',
      extra: { IDLE_TIMEOUT: '2s', ALLOWED_KINDS: 'fseq,xsq,audio,video,image', MAX_UPLOAD_SIZE: '1GiB' },
    });
    server = await spawnServer(env);
    // Warm up every path once (routes, hooks, worker, parsers) before measuring the baseline.
    const warm = await makeUpload({});
    await fetch(`${server.url}${warm}`, { method: 'PATCH', headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, body: Buffer.alloc(10) });
    await fetch(`${server.url}/files`, { method: 'OPTIONS' });
    await sleep(500);
    baseline = await rssOf(server.process.pid!);
  });
  afterAll(async () => {
    reportIfDied('bad-input server', server);
    await server?.kill('SIGKILL');
    await db?.drop();
  });

  /** A fresh upload for a case: its path. */
  async function makeUpload(spec: NonNullable<BadRequest['upload']>): Promise<string> {
    const response = await fetch(`${server!.url}/files`, {
      method: 'POST',
      headers: {
        ...TUS,
        ...(spec.length === 'deferred' ? { 'Upload-Defer-Length': '1' } : { 'Upload-Length': String(spec.length ?? 10) }),
        'Upload-Metadata': `filename ${Buffer.from(spec.filename ?? 'picture.png').toString('base64')}`,
      },
    });
    if (response.status !== 201) throw new Error(`could not create the case's upload: ${response.status} ${await response.text()}`);
    const uploadPath = new URL(response.headers.get('location')!).pathname;
    created.push(uploadPath.split('/').pop()!);
    if (spec.sent) {
      const patch = await fetch(`${server!.url}${uploadPath}`, {
        method: 'PATCH',
        headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
        body: new Uint8Array(spec.sent),
      });
      if (patch.status !== 204) throw new Error(`could not send the case's first bytes: ${patch.status}`);
    }
    return uploadPath;
  }

  async function offsetOf(uploadPath: string): Promise<number | null> {
    const head = await fetch(`${server!.url}${uploadPath}`, { method: 'HEAD', headers: TUS });
    return head.status === 200 ? Number(head.headers.get('upload-offset')) : null;
  }

  it(`has at least 40 cases (${CASES.length})`, () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, { request, expect: wanted }: BadInputCase) => {
    const uploadPath = request.path === '{upload}' || request.rawHead?.includes('{upload}') ? await makeUpload(request.upload ?? {}) : null;
    const target = uploadPath ?? request.path;
    const response = await send(server!.port, headOf(request, target), request);

    const summary = `${response.status} ${response.body.slice(0, 300)}`;
    expect(response.status, summary).toBe(wanted.status);
    if (wanted.code !== null) {
      expect(response.headers['content-type'], summary).toContain('application/json');
      expect((JSON.parse(response.body) as { error: { code: string } }).error.code, summary).toBe(wanted.code);
    }
    for (const [name, value] of Object.entries(wanted.headers ?? {})) {
      expect(response.headers[name.toLowerCase()], `${name} (${summary})`).toBe(value);
    }
    if (wanted.closedWithinMs !== undefined) {
      // IDLE_TIMEOUT is 2 s: not much sooner, not much later.
      expect(response.closedAfterMs).toBeGreaterThanOrEqual(1_500);
      expect(response.closedAfterMs).toBeLessThan(wanted.closedWithinMs);
    }
    if (wanted.offsetAfter !== undefined) {
      // The server may still be wrapping up a request the client abandoned.
      const offset = await waitFor(async () => {
        const value = await offsetOf(uploadPath!);
        return value === wanted.offsetAfter ? { value } : null;
      }, { timeoutMs: 5_000, intervalMs: 100, what: `offset ${wanted.offsetAfter}` }).then(
        (found) => found.value,
        async () => offsetOf(uploadPath!),
      );
      expect(offset, 'offset after the request').toBe(wanted.offsetAfter);
      // ...and the upload is not left locked: it takes the next bytes.
      if (wanted.status === 'closed') {
        const next = await fetch(`${server!.url}${uploadPath}`, {
          method: 'PATCH',
          headers: { ...TUS, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' },
          body: Buffer.alloc(1),
        });
        expect(next.status).toBe(204);
      }
    }
    if (wanted.record || wanted.final) {
      const location = response.headers.location;
      expect(location, 'Location of the created upload').toBeTruthy();
      const id = new URL(location!).pathname.split('/').pop()!;
      created.push(id);
      if (wanted.record) expect(await getFile(server!.url, id)).toMatchObject(wanted.record);
      if (wanted.final) {
        const record = await waitForFinal(server!.url, id, { timeoutMs: 60_000 });
        const outcome = `${record.status}: ${record.rejectionReason ?? record.failureReason ?? ''}`;
        console.log(`[reliability] bad-input ${_name} → ${outcome}`);
        expect(record.status, outcome).toBe(wanted.final.status);
        if (wanted.final.reason) expect(record.rejectionReason ?? '', outcome).toMatch(wanted.final.reason);
      }
    }
  });

  it('after all of them: healthy, memory back near its baseline, no half-made records', async () => {
    expect(server!.process.exitCode).toBeNull();
    expect((await fetch(`${server!.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server!.url}/readyz`);
    expect(ready.status, await ready.text()).toBe(200);

    // Every record is final, or an unfinished upload of ours that will expire on its own.
    await waitFor(async () => {
      const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from uploads where status = 'processing'`;
      return row!.n === 0;
    }, { timeoutMs: 60_000, what: 'processing to finish' });
    const rows = await db.sql<{ id: string; status: string; expires_at: Date | null }[]>`select id, status, expires_at from uploads`;
    const odd = rows.filter((r) => !(['ready', 'rejected', 'infected', 'failed', 'expired', 'deleted'].includes(r.status) || (r.status === 'uploading' && r.expires_at !== null && r.expires_at.getTime() > Date.now())));
    expect(odd, 'records in no sensible state').toEqual([]);
    // Every record comes from a request that was answered 201 (none from refused creations).
    const known = new Set(created);
    expect(rows.filter((r) => !known.has(r.id)).length, 'records from refused requests').toBeLessThanOrEqual(1); // the warm-up upload
    expect(await filesUnder(path.join(env.DATA_DIR!, 'spool')), 'spool files left').toEqual([]);

    // Memory: give the process a moment to settle, then compare with the warm baseline.
    await sleep(1_000);
    const rss = await rssOf(server!.process.pid!);
    console.log(`[reliability] bad-input RSS: baseline ${formatMiB(baseline)}, after ${CASES.length} cases ${formatMiB(rss)}`);
    expect(rss - baseline).toBeLessThan(64 * MiB);
  });
});
