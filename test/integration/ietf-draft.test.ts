// The IETF "Resumable Uploads for HTTP" draft on the tus endpoint (issue 20): tus-js-client's IETF
// modes (interop 5 and 6) to `ready`, and raw requests for interop 3, 7 and 8 — creation with its
// 104, offset retrieval, append, cancellation and the problem types — over real HTTP and Postgres.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import * as tusClient from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFile, waitForFinal } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { waitFor } from '../support/ports.js';
import { restartServer, ROOT, serverEnv, spawnServer, startServer, type ChildServer, type TestServer } from '../support/server.js';
import { idOf, sha256 } from '../support/tus.js';

const FSEQ = path.join(ROOT, 'test/fixtures/fseq/v1.0_novh_nkaminski_testseq.fseq');
const PROBLEM = 'https://iana.org/assignments/http-problem-types#';

interface Raw {
  status: number;
  headers: Record<string, string>;
  body: string;
  interim: { status: number; headers: Record<string, string> }[];
}

function parseHead(text: string): { status: number; headers: Record<string, string> } {
  const [line, ...fields] = text.split('\r\n');
  const headers: Record<string, string> = {};
  for (const field of fields) {
    const colon = field.indexOf(':');
    if (colon > 0) headers[field.slice(0, colon).trim().toLowerCase()] = field.slice(colon + 1).trim();
  }
  return { status: Number(line!.split(' ')[1]), headers };
}

/**
 * A small HTTP/1.1 client on node:net that sees interim responses. With `cutAfterInterim`, it
 * sends only `sendFirst` bytes of the body, waits for the first 104 and then drops the connection.
 */
function raw(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: Buffer = Buffer.alloc(0),
  options: { cutAfterInterim?: boolean; sendFirst?: number } = {},
): Promise<Raw> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(target.port), target.hostname);
    let buffer = Buffer.alloc(0);
    const interim: Raw['interim'] = [];
    const head =
      `${method} ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nConnection: close\r\n` +
      Object.entries({ 'Content-Length': String(body.length), ...headers })
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('') +
      '\r\n';
    socket.on('connect', () => {
      socket.write(head);
      socket.write(options.sendFirst !== undefined ? body.subarray(0, options.sendFirst) : body);
    });
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const parsed = parseHead(buffer.subarray(0, end).toString('latin1'));
        if (parsed.status >= 200) return;
        interim.push(parsed);
        buffer = buffer.subarray(end + 4);
        if (options.cutAfterInterim && parsed.status === 104) {
          socket.destroy();
          resolve({ status: 0, headers: {}, body: '', interim });
          return;
        }
      }
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const text = buffer.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return resolve({ status: 0, headers: {}, body: '', interim });
      const parsed = parseHead(text.slice(0, end));
      let rest = buffer.subarray(end + 4);
      if (parsed.headers['transfer-encoding'] === 'chunked') {
        const parts: Buffer[] = [];
        let at = 0;
        for (;;) {
          const lineEnd = rest.indexOf('\r\n', at);
          const size = parseInt(rest.subarray(at, lineEnd).toString(), 16);
          if (!size) break;
          parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
          at = lineEnd + 2 + size + 2;
        }
        rest = Buffer.concat(parts);
      }
      resolve({ ...parsed, body: rest.toString('utf8'), interim });
    });
  });
}

/** Until a request holds the lock of the upload (src/tus/pg-locker.ts: a session advisory lock on `tus:<id>`). */
async function waitForLock(sql: TestDatabase['sql'], uploadId: string): Promise<void> {
  await waitFor(
    async () => {
      const [row] = await sql<{ held: boolean }[]>`
        select exists (
          select 1 from pg_locks, hashtextextended(${`tus:${uploadId}`}, 0) as k
          where locktype = 'advisory' and granted and objsubid = 1
            and classid = ((k >> 32) & 4294967295)::oid and objid = (k & 4294967295)::oid
        ) as held`;
      return row!.held;
    },
    { timeoutMs: 10_000, what: 'the append to hold the upload lock' },
  );
}

/** HEAD of an unfinished draft upload: 204, `Upload-Complete: ?0` and an offset from `from` to `to`. */
async function unfinishedOffset(location: string, headers: Record<string, string>, from: number, to: number): Promise<number> {
  const head = await raw(location, 'HEAD', headers);
  expect(head.status).toBe(204);
  expect(head.headers['upload-complete']).toBe('?0');
  const offset = Number(head.headers['upload-offset']);
  expect(offset).toBeGreaterThanOrEqual(from);
  expect(offset).toBeLessThanOrEqual(to);
  return offset;
}

/** tus-js-client 4's typings do not list `protocol` yet. */
type ClientOptions = Partial<tusClient.UploadOptions> & { endpoint: string; protocol?: 'ietf-draft-03' | 'ietf-draft-05' };

function tusJsUpload(data: Buffer, options: ClientOptions): Promise<tusClient.Upload> {
  return new Promise((resolve, reject) => {
    const upload: tusClient.Upload = new tusClient.Upload(data, {
      retryDelays: [0, 100, 300],
      storeFingerprintForResuming: false,
      metadata: { filename: 'sequence.fseq' },
      ...options,
      onSuccess: () => resolve(upload),
      onError: reject,
    } as tusClient.UploadOptions);
    upload.start();
  });
}

for (const storage of ['file', 's3'] as const)
  describe(`IETF resumable upload draft (${storage} storage)`, () => {
  let db: TestDatabase;
  let server: TestServer;
  let endpoint: string;
  let data: Buffer;

  beforeAll(async () => {
    data = await readFile(FSEQ);
    db = await createTestDatabase();
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage }));
    endpoint = `${server.url}/files`;
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  for (const protocol of ['ietf-draft-03', 'ietf-draft-05'] as const) {
    it(`tus-js-client (${protocol}) uploads a sequence in chunks to ready`, async () => {
      const upload = await tusJsUpload(data, { endpoint, protocol, chunkSize: 20_000 });
      const record = await waitForFinal(server.url, idOf(upload.url!));
      expect(record).toMatchObject({ status: 'ready', sha256: sha256(data), size: data.length, filename: 'sequence.fseq', kind: 'fseq' });
    });

    it(`tus-js-client (${protocol}) resumes an interrupted upload from its URL`, async () => {
      let first!: tusClient.Upload;
      await new Promise<void>((resolve, reject) => {
        first = new tusClient.Upload(data, {
          endpoint,
          protocol,
          chunkSize: 16_384,
          retryDelays: [],
          storeFingerprintForResuming: false,
          metadata: { filename: 'resumed.fseq' },
          onChunkComplete: (_size, accepted) => {
            if (accepted >= 32_768) void first.abort().then(resolve, reject);
          },
          onSuccess: () => reject(new Error('the first attempt was to be interrupted')),
          onError: reject,
        } as ClientOptions as tusClient.UploadOptions);
        first.start();
      });
      const url = first.url!;
      const head = await fetch(url, { method: 'HEAD', headers: { 'Upload-Draft-Interop-Version': protocol === 'ietf-draft-03' ? '5' : '6' } });
      expect(head.status).toBe(204);
      expect(Number(head.headers.get('upload-offset'))).toBe(32_768);
      expect(head.headers.get('upload-complete')).toBe('?0');

      const resumed = await tusJsUpload(data, { endpoint, protocol, chunkSize: 16_384, uploadUrl: url });
      expect(resumed.url).toBe(url);
      const record = await waitForFinal(server.url, idOf(url));
      expect(record).toMatchObject({ status: 'ready', sha256: sha256(data), filename: 'resumed.fseq' });
    });
  }

  it('interop 3: Upload-Incomplete, 104, HEAD, append to 200 with the file record', async () => {
    const half = 40_000;
    const created = await raw(
      endpoint,
      'POST',
      { 'Upload-Draft-Interop-Version': '3', 'Upload-Incomplete': '?1', 'Content-Disposition': 'attachment; filename="v3.fseq"', 'Content-Type': 'application/octet-stream' },
      data.subarray(0, half),
    );
    expect(created.status).toBe(201);
    expect(created.interim.map((r) => r.status)).toEqual([104]);
    const location = created.headers.location!;
    expect(created.interim[0]!.headers.location).toBe(location);
    expect(created.interim[0]!.headers['upload-draft-interop-version']).toBe('3');
    expect(created.interim[0]!.headers['upload-limit']).toBeUndefined();
    expect(created.headers['upload-incomplete']).toBe('?1');
    expect(created.headers['upload-offset']).toBe(String(half));
    expect(created.headers['tus-resumable']).toBeUndefined();

    const head = await raw(location, 'HEAD', { 'Upload-Draft-Interop-Version': '3' });
    expect(head.status).toBe(204);
    expect(head.headers).toMatchObject({ 'upload-offset': String(half), 'upload-incomplete': '?1', 'cache-control': 'no-store' });

    const done = await raw(location, 'PATCH', { 'Upload-Draft-Interop-Version': '3', 'Upload-Offset': String(half), 'Upload-Incomplete': '?0' }, data.subarray(half));
    expect(done.status).toBe(200);
    expect(done.headers['upload-incomplete']).toBe('?0');
    const record = JSON.parse(done.body) as { id: string; filename: string; size: number };
    expect(record).toMatchObject({ id: idOf(location), filename: 'v3.fseq', size: data.length });
    expect(await waitForFinal(server.url, idOf(location))).toMatchObject({ status: 'ready', sha256: sha256(data) });
  });

  for (const version of ['7', '8']) {
    it(`interop ${version}: creation, HEAD, the append errors, completion and cancellation`, async () => {
      const v = { 'Upload-Draft-Interop-Version': version };
      const third = 30_000;
      const created = await raw(
        endpoint,
        'POST',
        { ...v, 'Upload-Complete': '?0', 'Upload-Length': String(data.length), 'Content-Disposition': `attachment; filename*=UTF-8''s%C3%A9quence-${version}.fseq` },
        data.subarray(0, third),
      );
      expect(created.status).toBe(201);
      expect(created.interim[0]).toMatchObject({ status: 104, headers: { location: created.headers.location, 'upload-draft-interop-version': version } });
      expect(created.interim[0]!.headers['upload-limit']).toMatch(/max-size=\d+/);
      expect(created.headers).toMatchObject({ 'upload-complete': '?0', 'upload-offset': String(third) });
      const location = created.headers.location!;

      const head = await raw(location, 'HEAD', v);
      expect(head.status).toBe(204);
      expect(head.headers).toMatchObject({ 'upload-offset': String(third), 'upload-complete': '?0', 'upload-length': String(data.length), 'cache-control': 'no-store' });
      expect(head.headers['upload-limit']).toMatch(/min-size=0/);

      const unlabelled = await raw(location, 'PATCH', { ...v, 'Upload-Offset': String(third), 'Upload-Complete': '?1' }, data.subarray(third));
      expect(unlabelled.status).toBe(415);

      const partial = { ...v, 'Content-Type': 'application/partial-upload' };
      const wrong = await raw(location, 'PATCH', { ...partial, 'Upload-Offset': '5', 'Upload-Complete': '?0' }, data.subarray(5, 10));
      expect(wrong.status).toBe(409);
      expect(wrong.headers).toMatchObject({ 'content-type': 'application/problem+json', 'upload-offset': String(third), 'upload-complete': '?0' });
      expect(JSON.parse(wrong.body)).toMatchObject({ type: `${PROBLEM}mismatching-upload-offset`, 'expected-offset': third, 'provided-offset': 5 });

      const shortCompletion = await raw(location, 'PATCH', { ...partial, 'Upload-Offset': String(third), 'Upload-Complete': '?1' }, data.subarray(third, third + 10));
      expect(shortCompletion.status).toBe(400);
      expect(JSON.parse(shortCompletion.body)).toMatchObject({ type: `${PROBLEM}inconsistent-upload-length` });

      const second = await raw(location, 'PATCH', { ...partial, 'Upload-Offset': String(third), 'Upload-Complete': '?0' }, data.subarray(third, 2 * third));
      expect(second.status).toBe(204);
      expect(second.headers).toMatchObject({ 'upload-offset': String(2 * third), 'upload-complete': '?0' });

      const last = await raw(location, 'PATCH', { ...partial, 'Upload-Offset': String(2 * third), 'Upload-Complete': '?1' }, data.subarray(2 * third));
      expect(last.status).toBe(200);
      expect(last.headers['upload-complete']).toBe('?1');
      expect(JSON.parse(last.body)).toMatchObject({ id: idOf(location), filename: `séquence-${version}.fseq` });

      const again = await raw(location, 'PATCH', { ...partial, 'Upload-Offset': String(data.length), 'Upload-Complete': '?1' });
      expect(again.status).toBe(400);
      expect(JSON.parse(again.body)).toMatchObject({ type: `${PROBLEM}completed-upload` });
      expect(await waitForFinal(server.url, idOf(location))).toMatchObject({ status: 'ready', sha256: sha256(data) });

      // Cancellation.
      const other = await raw(endpoint, 'POST', { ...v, 'Upload-Complete': '?0', 'Content-Disposition': 'attachment; filename="gone.bin"' });
      expect(other.status).toBe(201);
      const cancelled = await raw(other.headers.location!, 'DELETE', v);
      expect(cancelled.status).toBe(204);
      expect((await raw(other.headers.location!, 'HEAD', v)).status).toBe(404);
    });
  }

  it('a creation cut off after its 104 is resumed from HEAD and completed with one append', async () => {
    const v = { 'Upload-Draft-Interop-Version': '8' };
    const cut = await raw(endpoint, 'POST', { ...v, 'Upload-Complete': '?1', 'Content-Disposition': 'attachment; filename="cut.fseq"' }, data, {
      sendFirst: 50_000,
      cutAfterInterim: true,
    });
    expect(cut.interim[0]?.status).toBe(104);
    const location = cut.interim[0]!.headers.location!;
    expect(location).toMatch(/\/files\/[0-9a-f]{32}$/);
    // The interrupted request ends on the server a moment later; the bytes that arrived are kept.
    const head = await waitFor(
      async () => {
        const answer = await raw(location, 'HEAD', v);
        return answer.status === 204 ? answer : null;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: 'the interrupted upload to answer HEAD' },
    );
    expect(head.headers['upload-complete']).toBe('?0');
    expect(head.headers['upload-length']).toBe(String(data.length));
    const offset = Number(head.headers['upload-offset']);
    expect(offset).toBeLessThanOrEqual(50_000);
    const done = await raw(location, 'PATCH', { ...v, 'Content-Type': 'application/partial-upload', 'Upload-Offset': String(offset), 'Upload-Complete': '?1' }, data.subarray(offset));
    expect(done.status).toBe(200);
    expect(await waitForFinal(server.url, idOf(location))).toMatchObject({ status: 'ready', sha256: sha256(data), filename: 'cut.fseq', transport: 'ietf', interopVersion: 8 });
  });

  it('offset retrieval ends an append still in flight, and the offset it reports is what the next append continues from', async () => {
    const v = { 'Upload-Draft-Interop-Version': '8' };
    const body = randomBytes(4 << 20);
    const created = await raw(endpoint, 'POST', { ...v, 'Upload-Complete': '?0', 'Upload-Length': String(body.length), 'Content-Disposition': 'attachment; filename="stuck.bin"' }, body.subarray(0, 1000));
    expect(created.status).toBe(201);
    const location = created.headers.location!;
    const append = { ...v, 'Content-Type': 'application/partial-upload', 'Upload-Complete': '?1' };
    // A client whose network stalls: part of the append is sent, then nothing, the connection open.
    const stuck = raw(location, 'PATCH', { ...append, 'Upload-Offset': '1000' }, body.subarray(1000), { sendFirst: 1 << 20 });
    await waitForLock(db.sql, idOf(location));
    const offset = await unfinishedOffset(location, v, 1000, 1000 + (1 << 20));
    // The stuck append was ended before the HEAD answered, keeping what had arrived.
    const ended = await stuck;
    expect(ended.status).toBe(204);
    expect(ended.headers).toMatchObject({ 'upload-offset': String(offset), 'upload-complete': '?0', connection: 'close' });
    const done = await raw(location, 'PATCH', { ...append, 'Upload-Offset': String(offset) }, body.subarray(offset));
    expect(done.status).toBe(200);
    expect(await waitForFinal(server.url, idOf(location))).toMatchObject({ status: 'ready', sha256: sha256(body), size: body.length });
  });

  for (const version of ['4', '5', '6']) {
    it(`interop ${version}: creation with Upload-Complete, HEAD, append to 200`, async () => {
      const v = { 'Upload-Draft-Interop-Version': version };
      const created = await raw(endpoint, 'POST', { ...v, 'Upload-Complete': '?0', 'Content-Disposition': `attachment; filename="v${version}.fseq"` }, data.subarray(0, 1000));
      expect(created.status).toBe(201);
      expect(created.interim[0]?.status).toBe(104);
      expect(created.interim[0]!.headers['upload-limit'] !== undefined).toBe(version === '6');
      const location = created.headers.location!;
      const head = await raw(location, 'HEAD', v);
      expect(head.headers).toMatchObject({ 'upload-offset': '1000', 'upload-complete': '?0' });
      // Unknown length until the completing append: Content-Length tells it.
      const type: Record<string, string> = version === '6' ? { 'Content-Type': 'application/partial-upload' } : {};
      const done = await raw(location, 'PATCH', { ...v, ...type, 'Upload-Offset': '1000', 'Upload-Complete': '?1' }, data.subarray(1000));
      expect(done.status).toBe(200);
      expect(done.headers).toMatchObject({ 'upload-complete': '?1', 'upload-offset': String(data.length) });
      expect(await waitForFinal(server.url, idOf(location))).toMatchObject({ status: 'ready', sha256: sha256(data), size: data.length });
    });
  }

  it('an upload is continued only with the protocol that created it', async () => {
    const v = { 'Upload-Draft-Interop-Version': '8' };
    const ietf = await raw(endpoint, 'POST', { ...v, 'Upload-Complete': '?0', 'Upload-Length': '10', 'Content-Disposition': 'attachment; filename="i.bin"' }, Buffer.from('12345'));
    const tusPatch = await raw(ietf.headers.location!, 'PATCH', { 'Tus-Resumable': '1.0.0', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '5' }, Buffer.from('67890'));
    expect(tusPatch.status).toBe(409);
    expect(JSON.parse(tusPatch.body)).toMatchObject({ error: { code: 'PROTOCOL_MISMATCH' } });

    const tus = await raw(endpoint, 'POST', { 'Tus-Resumable': '1.0.0', 'Upload-Length': '10', 'Upload-Metadata': `filename ${Buffer.from('t.bin').toString('base64')}` });
    expect(tus.status).toBe(201);
    const ietfPatch = await raw(tus.headers.location!, 'PATCH', { ...v, 'Content-Type': 'application/partial-upload', 'Upload-Offset': '0', 'Upload-Complete': '?0' }, Buffer.from('12345'));
    expect(ietfPatch.status).toBe(409);
    expect(ietfPatch.headers['content-type']).toBe('application/problem+json');
    // Both still answer HEAD in either protocol, at the offsets they had.
    expect((await raw(ietf.headers.location!, 'HEAD', v)).headers['upload-offset']).toBe('5');
    expect((await raw(tus.headers.location!, 'HEAD', { 'Tus-Resumable': '1.0.0' })).headers['upload-offset']).toBe('0');
    // The record says which protocol created each, from its first statement on.
    const [first] = await db.sql<{ transport: string; interop_version: number | null }[]>`select transport, interop_version from uploads where id = ${idOf(ietf.headers.location!)}`;
    expect(first).toEqual({ transport: 'ietf', interop_version: 8 });
    const [second] = await db.sql<{ transport: string }[]>`select transport from uploads where id = ${idOf(tus.headers.location!)}`;
    expect(second!.transport).toBe('tus');
  });

  it('inconsistent length indications are a 400 with the problem type, before any upload exists', async () => {
    const answer = await raw(endpoint, 'POST', { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1', 'Upload-Length': '10', 'Content-Disposition': 'attachment; filename="x.bin"' }, Buffer.from('12345'));
    expect(answer.status).toBe(400);
    expect(answer.interim).toEqual([]);
    expect(answer.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(answer.body)).toMatchObject({ type: `${PROBLEM}inconsistent-upload-length`, status: 400 });
  });

  it('OPTIONS answers Upload-Limit; an unsupported interop version is a plain (tus) request, never a 104', async () => {
    const options = await raw(endpoint, 'OPTIONS', { 'Upload-Draft-Interop-Version': '3' });
    expect(options.headers['upload-limit']).toMatch(/max-size=\d+, min-size=0, max-age=\d+/);
    for (const version of ['2', '9', 'x']) {
      const answer = await raw(endpoint, 'POST', { 'Upload-Draft-Interop-Version': version, 'Upload-Complete': '?0' }, Buffer.from('abc'));
      expect(answer.interim).toEqual([]);
      expect(answer.status).toBe(412);
    }
  });

  it('the completing creation of a small file answers 200 with the record', async () => {
    const body = Buffer.from('hello resumable world');
    const answer = await raw(endpoint, 'POST', { 'Upload-Draft-Interop-Version': '6', 'Upload-Complete': '?1', 'Content-Disposition': 'attachment; filename="hello.txt"', 'Content-Type': 'text/plain' }, body);
    expect(answer.status).toBe(200);
    expect(answer.interim[0]?.status).toBe(104);
    expect(answer.headers).toMatchObject({ 'upload-complete': '?1', 'upload-offset': String(body.length) });
    const record = JSON.parse(answer.body) as { id: string };
    // Settled where it finished (the small-file inline path): the answer is the ready record.
    expect(record).toMatchObject({ filename: 'hello.txt', mimeType: 'text/plain', size: body.length, status: 'ready', sha256: sha256(body), transport: 'ietf' });
    expect((await getFile(server.url, record.id)).filename).toBe('hello.txt');
    expect(await waitForFinal(server.url, record.id)).toMatchObject({ status: 'ready', sha256: sha256(body) });
  });
});

describe('IETF resumable upload draft with AUTH_MODE=jwt', () => {
  let db: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage: 'file', extra: jwtEnv() }));
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it("another owner's upload is a 404 to every draft operation", async () => {
    const v = { 'Upload-Draft-Interop-Version': '8' };
    const alice = await bearer('alice');
    const mallory = await bearer('mallory');
    expect((await raw(`${server.url}/files`, 'POST', { ...v, 'Upload-Complete': '?0' })).status).toBe(401);
    const created = await raw(`${server.url}/files`, 'POST', { ...v, ...alice, 'Upload-Complete': '?0', 'Upload-Length': '10', 'Content-Disposition': 'attachment; filename="a.bin"' }, Buffer.from('12345'));
    expect(created.status).toBe(201);
    const location = created.headers.location!;
    expect((await raw(location, 'HEAD', { ...v, ...mallory })).status).toBe(404);
    const patched = await raw(location, 'PATCH', { ...v, ...mallory, 'Content-Type': 'application/partial-upload', 'Upload-Offset': '5', 'Upload-Complete': '?1' }, Buffer.from('67890'));
    expect(patched.status).toBe(404);
    expect((await raw(location, 'DELETE', { ...v, ...mallory })).status).toBe(404);
    const head = await raw(location, 'HEAD', { ...v, ...alice });
    expect(head.headers['upload-offset']).toBe('5');
  });
});

describe('IETF resumable upload draft: the server killed mid-append', () => {
  let db: TestDatabase;
  let server: ChildServer | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await server?.kill('SIGKILL');
    await db?.drop();
  });

  it('after a SIGKILL during an append and a restart, HEAD reports an offset the next append continues from, byte-identical', async () => {
    const env = await serverEnv({ databaseUrl: db.url, storage: 'file' });
    server = await spawnServer(env);
    const v = { 'Upload-Draft-Interop-Version': '6' };
    const body = randomBytes(8 << 20);
    const created = await raw(`${server.url}/files`, 'POST', { ...v, 'Upload-Complete': '?0', 'Upload-Length': String(body.length), 'Content-Disposition': 'attachment; filename="killed.bin"' }, body.subarray(0, 1000));
    expect(created.status).toBe(201);
    const location = created.headers.location!;
    const append = { ...v, 'Content-Type': 'application/partial-upload', 'Upload-Complete': '?1' };
    const inFlight = raw(location, 'PATCH', { ...append, 'Upload-Offset': '1000' }, body.subarray(1000), { sendFirst: 4 << 20 }).catch(() => null);
    await waitForLock(db.sql, idOf(location));
    const restarted = restartServer(server, env);
    await inFlight;
    server = await restarted;
    const offset = await unfinishedOffset(location, v, 1000, 1000 + (4 << 20));
    const done = await raw(location, 'PATCH', { ...append, 'Upload-Offset': String(offset) }, body.subarray(offset));
    expect(done.status).toBe(200);
    expect(done.headers['upload-complete']).toBe('?1');
    expect(await waitForFinal(server.url, idOf(location))).toMatchObject({ status: 'ready', sha256: sha256(body), size: body.length, transport: 'ietf', interopVersion: 6 });
  });
});
