// Slow bodies (issue 18, lock-pool exhaustion): one owner trickling bytes into many PATCHes must
// not stop another owner's upload. Against a server process with OWNER_MAX_CONCURRENT_UPLOADS=4
// and UPLOAD_MIN_RATE=1KiB/3s: the attacker's requests beyond 4 get 429 with Retry-After, the 4
// accepted ones are ended by the rate rule (408, the bytes that arrived kept: HEAD says so, and the
// upload resumes from there), while the victim creates, HEADs and PATCHes an upload to completion
// with tus-js-client. No request anywhere answers 500.
import http from 'node:http';
import * as tus from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { serverEnv, spawnServer, type ChildServer } from '../support/server.js';
import { KiB, reportIfDied, seededBytes, sleep } from './support.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
const CAP = 4;
const WINDOW_MS = 3_000;
const LENGTH = 1_000;
const metadata = (name: string) => `filename ${Buffer.from(name).toString('base64')}`;

interface TrickleResult {
  status: number | 'closed';
  headers: http.IncomingHttpHeaders;
  body: string;
  /** When each byte was written (ms since epoch). */
  writes: number[];
  respondedAt: number;
}

/**
 * A request whose body (Content-Length `length`) comes one byte every `everyMs`, at most
 * `maxBytes` of them, until the server answers or closes. Each on its own connection.
 */
function trickle(
  url: string,
  method: 'PATCH' | 'POST',
  headers: Record<string, string>,
  { length, everyMs, maxBytes }: { length: number; everyMs: number; maxBytes: number },
): Promise<TrickleResult> {
  return new Promise((resolve) => {
    const writes: number[] = [];
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const req = http.request(url, { method, agent: false, headers: { ...headers, 'Content-Length': String(length) } });
    const finish = (result: Omit<TrickleResult, 'writes'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(safety);
      req.destroy();
      resolve({ ...result, writes });
    };
    const writeOne = () => {
      if (settled || writes.length >= maxBytes || req.destroyed) return;
      writes.push(Date.now());
      req.write(Buffer.from([0x41 + (writes.length % 26)]));
      timer = setTimeout(writeOne, everyMs);
    };
    // Bounded: nothing here lives longer than 25 s.
    const safety = setTimeout(() => finish({ status: 'closed', headers: {}, body: 'test timeout', respondedAt: Date.now() }), 25_000);
    req.on('response', (res) => {
      const respondedAt = Date.now();
      clearTimeout(timer);
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => finish({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString(), respondedAt }));
      res.on('error', () => finish({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString(), respondedAt }));
    });
    req.on('error', () => finish({ status: 'closed', headers: {}, body: '', respondedAt: Date.now() }));
    req.flushHeaders();
    writeOne();
  });
}

describe('slow bodies from one owner do not stop another owner', () => {
  let db: TestDatabase;
  let server: ChildServer | undefined;
  let alice: Record<string, string>;
  let bob: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = await serverEnv({
      databaseUrl: db.url,
      storage: 'file',
      extra: jwtEnv({ OWNER_MAX_CONCURRENT_UPLOADS: String(CAP), UPLOAD_MIN_RATE: `1KiB/${WINDOW_MS / 1000}s`, IDLE_TIMEOUT: '20s' }),
    });
    server = await spawnServer(env);
    alice = await bearer('alice');
    bob = await bearer('bob');
  });
  afterAll(async () => {
    reportIfDied('slow-bodies server', server);
    await server?.kill('SIGKILL');
    await db?.drop();
  });

  /** Every status any request of this file got, to check that none was a 5xx. */
  const statuses: Array<{ who: string; method: string; status: number | 'closed' }> = [];
  const request = async (who: string, url: string, init: RequestInit) => {
    const response = await fetch(url, init);
    statuses.push({ who, method: init.method ?? 'GET', status: response.status });
    return response;
  };
  const create = async (who: string, auth: Record<string, string>, length: number) => {
    const response = await request(who, `${server!.url}/files`, {
      method: 'POST',
      headers: { ...TUS, ...auth, 'Upload-Length': String(length), 'Upload-Metadata': metadata(`${who}.bin`) },
    });
    expect(response.status).toBe(201);
    return new URL(response.headers.get('location')!).pathname.split('/').pop()!;
  };
  const head = async (who: string, auth: Record<string, string>, id: string) => {
    const response = await request(who, `${server!.url}/files/${id}`, { method: 'HEAD', headers: { ...TUS, ...auth } });
    return { status: response.status, offset: Number(response.headers.get('upload-offset')) };
  };

  it(`the attacker's trickling PATCHes get 429 beyond ${CAP} and 408 after the window; the victim's upload completes`, async () => {
    const ATTACKS = CAP + 2;
    const ids: string[] = [];
    for (let i = 0; i < ATTACKS; i++) ids.push(await create('alice', alice, LENGTH));

    // All at once: CAP of them take the owner's slots and trickle; the others are refused.
    const started = Date.now();
    const attacks = ids.map((id) =>
      trickle(
        `${server!.url}/files/${id}`,
        'PATCH',
        { ...TUS, ...alice, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
        { length: LENGTH, everyMs: 1_300, maxBytes: 12 },
      ),
    );
    await sleep(300);

    // Meanwhile the victim: create, HEAD, upload to completion with tus-js-client, HEAD again.
    const data = seededBytes(512 * KiB, 18);
    const victimId = await create('bob', bob, data.length);
    const before = await head('bob', bob, victimId);
    expect(before).toEqual({ status: 200, offset: 0 });
    const victimStatuses: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const upload = new tus.Upload(data, {
        uploadUrl: `${server!.url}/files/${victimId}`,
        chunkSize: 128 * KiB,
        retryDelays: [],
        headers: bob,
        storeFingerprintForResuming: false,
        onAfterResponse: (_req, res) => {
          victimStatuses.push(res.getStatus());
        },
        onSuccess: () => resolve(),
        onError: reject,
      });
      upload.start();
    });
    const victimDoneAfter = Date.now() - started;
    for (const status of victimStatuses) statuses.push({ who: 'bob', method: 'tus-js-client', status });
    expect(victimStatuses.filter((s) => s === 204).length).toBe(4);
    expect(victimStatuses.every((s) => s < 300)).toBe(true);
    // Well before any trickle was ended: the victim never waited on the attacker.
    expect(victimDoneAfter).toBeLessThan(WINDOW_MS);
    expect(await head('bob', bob, victimId)).toEqual({ status: 200, offset: data.length });

    const results = await Promise.all(attacks);
    for (const result of results) statuses.push({ who: 'alice', method: 'PATCH', status: result.status });
    const refused = results.filter((r) => r.status === 429);
    const ended = results.filter((r) => r.status === 408);
    expect(refused).toHaveLength(ATTACKS - CAP);
    expect(ended).toHaveLength(CAP);

    for (const r of refused) {
      expect(r.headers['retry-after']).toMatch(/^\d+$/);
      expect(JSON.parse(r.body).error.code).toBe('TOO_MANY_UPLOADS');
      // Refused before its body was read.
      expect(r.respondedAt - started).toBeLessThan(WINDOW_MS);
    }
    for (const [i, r] of results.entries()) {
      const { status, offset } = await head('alice', alice, ids[i]!);
      expect(status).toBe(200);
      if (r.status === 429) {
        expect(offset).toBe(0);
        continue;
      }
      const error = JSON.parse(r.body).error;
      expect(error.code).toBe('BODY_TOO_SLOW');
      expect(r.headers.connection).toBe('close');
      // Ended by the rate rule: after a window, long before IDLE_TIMEOUT or the body's end.
      expect(r.respondedAt - started).toBeGreaterThanOrEqual(WINDOW_MS);
      expect(r.respondedAt - started).toBeLessThan(WINDOW_MS + 3_000);
      // What arrived is kept: HEAD says what the 408 said, which is every byte sent (a byte sent
      // at the very moment the body was ended may miss it).
      const sent = r.writes.filter((t) => t <= r.respondedAt).length;
      const settled = r.writes.filter((t) => t < r.respondedAt - 250).length;
      expect(offset).toBe(error.uploadOffset);
      expect(offset).toBeGreaterThanOrEqual(settled);
      expect(offset).toBeLessThanOrEqual(sent);
      expect(offset).toBeGreaterThan(0);
    }

    // The attacker's slots are free again, and an upload ended by the rate rule resumes at HEAD's offset.
    const resumeId = ids[results.findIndex((r) => r.status === 408)]!;
    const { offset } = await head('alice', alice, resumeId);
    const resumed = await request('alice', `${server!.url}/files/${resumeId}`, {
      method: 'PATCH',
      headers: { ...TUS, ...alice, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' },
      body: Buffer.alloc(LENGTH - offset, 0x42),
    });
    expect(resumed.status).toBe(204);
    expect(resumed.headers.get('upload-offset')).toBe(String(LENGTH));

    expect(statuses.filter((s) => s.status === 'closed' || s.status >= 500)).toEqual([]);
  }, 30_000);

  it('a trickling creation-with-upload answers 201 with what arrived, and counts against the cap', async () => {
    const result = await trickle(
      `${server!.url}/files`,
      'POST',
      { ...TUS, ...alice, 'Upload-Length': String(LENGTH), 'Upload-Metadata': metadata('post.bin'), 'Content-Type': 'application/offset+octet-stream' },
      { length: LENGTH, everyMs: 1_300, maxBytes: 12 },
    );
    statuses.push({ who: 'alice', method: 'POST', status: result.status });
    expect(result.status).toBe(201);
    expect(result.headers.connection).toBe('close');
    const id = new URL(String(result.headers.location)).pathname.split('/').pop()!;
    const offset = Number(result.headers['upload-offset']);
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThanOrEqual(result.writes.length);
    expect(await head('alice', alice, id)).toEqual({ status: 200, offset });

    // CAP trickling creations hold the owner's slots: one more is refused, another owner's is not.
    const holders = Array.from({ length: CAP }, (_, i) =>
      trickle(
        `${server!.url}/files`,
        'POST',
        { ...TUS, ...alice, 'Upload-Length': String(LENGTH), 'Upload-Metadata': metadata(`hold-${i}.bin`), 'Content-Type': 'application/offset+octet-stream' },
        { length: LENGTH, everyMs: 1_000, maxBytes: 8 },
      ),
    );
    await sleep(500);
    const extra = await request('alice', `${server!.url}/files`, {
      method: 'POST',
      headers: { ...TUS, ...alice, 'Upload-Length': '3', 'Upload-Metadata': metadata('extra.bin'), 'Content-Type': 'application/offset+octet-stream' },
      body: Buffer.from('abc'),
    });
    expect(extra.status).toBe(429);
    expect(extra.headers.get('retry-after')).toMatch(/^\d+$/);
    // A creation without a body is not an upload request: it is not refused.
    await create('alice', alice, 10);
    const other = await request('bob', `${server!.url}/files`, {
      method: 'POST',
      headers: { ...TUS, ...bob, 'Upload-Length': '3', 'Upload-Metadata': metadata('bob.bin'), 'Content-Type': 'application/offset+octet-stream' },
      body: Buffer.from('abc'),
    });
    expect(other.status).toBe(201);
    expect(other.headers.get('upload-offset')).toBe('3');
    const held = await Promise.all(holders);
    for (const r of held) statuses.push({ who: 'alice', method: 'POST', status: r.status });
    expect(held.map((r) => r.status)).toEqual(Array(CAP).fill(201));

    expect(statuses.filter((s) => s.status === 'closed' || s.status >= 500)).toEqual([]);
  }, 30_000);
});
