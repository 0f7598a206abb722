// Issue #23: the SHA-256 and MD5 of an upload are computed as its bytes arrive, and processing
// then does not read the bytes back to hash them. Every way an upload can arrive ends with the
// hashes of `sha256sum`/`md5sum`; where this process did not see every byte in order (a restart,
// another instance, a concatenation) processing falls back to its own pass, and the
// `tusvault_upload_digests_total` counter says which path each upload took.
import { createHash, randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import path from 'node:path';
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildFseqV2 } from '../support/fixture-builders.js';
import { serverEnv, startServer, startTwoInstances, type StorageKind, type TestServer, type TwoInstances } from '../support/server.js';
import { idOf, md5, sha256, upload } from '../support/tus.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
const OCTETS = { 'Content-Type': 'application/offset+octet-stream' };
const KiB = 1024;
const metadata = (name: string) => `filename ${Buffer.from(name).toString('base64')}`;

type Source = 'arrival' | 'storage';

describe.each<StorageKind>(['file', 's3'])('digest on arrival with %s storage', (storage) => {
  let db: TestDatabase;
  let env: Record<string, string>;
  // `a` runs the worker; `b` is a second API instance on the same database and storage.
  let a: TestServer;
  let b: TestServer;

  let two: TwoInstances;

  beforeAll(async () => {
    two = await startTwoInstances(storage);
    ({ db, env, a, b } = two);
  });
  afterAll(async () => {
    await two?.stop();
  });

  const at = (server: TestServer, location: string) => location.replace(/^http:\/\/[^/]+/, server.url);

  async function digestCounts(): Promise<Record<Source, number>> {
    const text = await (await fetch(`${a.url}/metrics`)).text();
    const count = (source: Source) => Number(new RegExp(`^tusvault_upload_digests_total\\{source="${source}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    return { arrival: count('arrival'), storage: count('storage') };
  }

  async function create(server: TestServer, length: number, headers: Record<string, string> = {}, body?: Buffer): Promise<Response> {
    const response = await fetch(`${server.url}/files`, {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': String(length), 'Upload-Metadata': metadata('digest.bin'), ...(body ? OCTETS : {}), ...headers },
      ...(body ? { body: Buffer.from(body) } : {}),
    });
    expect(response.status).toBe(201);
    return response;
  }

  async function patch(url: string, offset: number, body: Buffer, headers: Record<string, string> = {}): Promise<number> {
    const response = await fetch(url, { method: 'PATCH', headers: { ...TUS, ...OCTETS, 'Upload-Offset': String(offset), ...headers }, body: Buffer.from(body) });
    expect(response.status).toBe(204);
    return Number(response.headers.get('upload-offset'));
  }

  /** Runs an upload and checks its record against sha256sum/md5sum and the digest path it took. */
  async function expectDigested(data: Buffer, source: Source, send: () => Promise<string>): Promise<void> {
    const before = await digestCounts();
    const id = await send();
    const record = await waitForFinal(a.url, id);
    expect(record.status).toBe('ready');
    expect(record.size).toBe(data.length);
    expect(record.sha256).toBe(sha256(data));
    expect(record.md5).toBe(md5(data));
    const after = await digestCounts();
    expect({ arrival: after.arrival - before.arrival, storage: after.storage - before.storage }).toEqual({
      arrival: source === 'arrival' ? 1 : 0,
      storage: source === 'storage' ? 1 : 0,
    });
  }

  it('hashes a one-PATCH upload as it arrives (tus-js-client)', async () => {
    const data = randomBytes(300 * KiB + 7);
    await expectDigested(data, 'arrival', () => upload(data, { endpoint: `${a.url}/files`, filename: 'one.bin' }));
  });

  it('hashes a creation-with-upload', async () => {
    const data = randomBytes(64 * KiB);
    await expectDigested(data, 'arrival', async () => idOf((await create(a, data.length, {}, data)).headers.get('location')!));
  });

  it('continues the digest over many PATCHes (tus-js-client, small chunks)', async () => {
    const data = randomBytes(640 * KiB + 3);
    await expectDigested(data, 'arrival', () => upload(data, { endpoint: `${a.url}/files`, filename: 'many.bin', chunkSize: 128 * KiB }));
  });

  it('continues the digest after a PATCH cut mid-body, resumed on the same process', async () => {
    const data = randomBytes(400 * KiB + 11);
    await expectDigested(data, 'arrival', async () => {
      const location = (await create(a, data.length)).headers.get('location')!;
      const sent = 150 * KiB;
      await cutPatch(location, data, sent);
      const head = await fetch(location, { method: 'HEAD', headers: TUS });
      const offset = Number(head.headers.get('upload-offset'));
      expect(offset).toBe(sent);
      await patch(location, offset, data.subarray(offset));
      return idOf(location);
    });
  });

  it('hashes checksum-extension PATCHes (written from the verified spool)', async () => {
    const data = randomBytes(200 * KiB + 5);
    const sha1 = (bytes: Buffer) => `sha1 ${createHash('sha1').update(bytes).digest('base64')}`;
    await expectDigested(data, 'arrival', async () => {
      const location = (await create(a, data.length)).headers.get('location')!;
      const half = 100 * KiB;
      await patch(location, 0, data.subarray(0, half), { 'Upload-Checksum': sha1(data.subarray(0, half)) });
      await patch(location, half, data.subarray(half), { 'Upload-Checksum': sha1(data.subarray(half)) });
      return idOf(location);
    });
  });

  it('hashes an IETF-draft creation that completes in one request (Upload-Complete: ?1)', async () => {
    const data = randomBytes(96 * KiB + 1);
    await expectDigested(data, 'arrival', async () => {
      const answer = await ietfCreate(`${a.url}/files`, data);
      expect(answer.status).toBe(200);
      return idOf(answer.location);
    });
  });

  it('falls back to reading the bytes when another instance received some of them', async () => {
    const data = randomBytes(300 * KiB);
    const third = 100 * KiB;
    // a → b → a: `a` holds a digest of the first third, but b wrote the second one.
    await expectDigested(data, 'storage', async () => {
      const location = (await create(a, data.length)).headers.get('location')!;
      await patch(at(a, location), 0, data.subarray(0, third));
      await patch(at(b, location), third, data.subarray(third, 2 * third));
      await patch(at(a, location), 2 * third, data.subarray(2 * third));
      return idOf(location);
    });
    // The upload continued on another instance and finished there.
    const other = randomBytes(200 * KiB);
    await expectDigested(other, 'storage', async () => {
      const location = (await create(a, other.length)).headers.get('location')!;
      await patch(at(a, location), 0, other.subarray(0, third));
      await patch(at(b, location), third, other.subarray(third));
      return idOf(location);
    });
  });

  it('hashes on the instance that received every byte, whichever runs the worker', async () => {
    const data = randomBytes(150 * KiB);
    await expectDigested(data, 'arrival', () => upload(data, { endpoint: `${b.url}/files`, filename: 'on-b.bin', chunkSize: 64 * KiB }));
  });

  it('falls back for a concatenation (the final is assembled from its partials)', async () => {
    const first = randomBytes(120 * KiB);
    const second = randomBytes(80 * KiB + 9);
    const data = Buffer.concat([first, second]);
    await expectDigested(data, 'storage', async () => {
      const urls: string[] = [];
      for (const part of [first, second]) {
        const url = (await create(a, part.length, { 'Upload-Concat': 'partial' })).headers.get('location')!;
        await patch(url, 0, part);
        urls.push(url);
      }
      const final = await fetch(`${a.url}/files`, {
        method: 'POST',
        headers: { ...TUS, 'Upload-Concat': `final;${urls.join(' ')}`, 'Upload-Metadata': metadata('joined.bin') },
      });
      expect(final.status).toBe(201);
      return idOf(final.headers.get('location')!);
    });
  });

  it('hashes a large upload over many PATCHes on the hashing thread', async () => {
    const data = randomBytes(6 * 1024 * KiB + 5);
    const opened = a.hashThreads!.opened;
    await expectDigested(data, 'arrival', () => upload(data, { endpoint: `${a.url}/files`, filename: 'large.bin', chunkSize: 1024 * KiB }));
    expect(a.hashThreads!.opened).toBe(opened + 1);
    expect(a.hashThreads!.inFlightBytes).toBe(0);
  });

  it('falls back to reading the bytes when the hashing thread dies mid-upload, and hashes the next on a new one', async () => {
    const data = randomBytes(4 * 1024 * KiB + 3);
    const half = 2 * 1024 * KiB;
    await expectDigested(data, 'storage', async () => {
      const location = (await create(a, data.length)).headers.get('location')!;
      await patch(location, 0, data.subarray(0, half));
      await a.hashThreads!.terminate();
      await patch(location, half, data.subarray(half));
      return idOf(location);
    });
    const next = randomBytes(3 * 1024 * KiB);
    const opened = a.hashThreads!.opened;
    await expectDigested(next, 'arrival', () => upload(next, { endpoint: `${a.url}/files`, filename: 'next.bin', chunkSize: 1024 * KiB }));
    expect(a.hashThreads!.opened).toBe(opened + 1);
  });

  // Last: it replaces `a`.
  it('falls back to reading the bytes after a restart', async () => {
    const data = randomBytes(256 * KiB + 1);
    await expectDigested(data, 'storage', async () => {
      const location = (await create(a, data.length)).headers.get('location')!;
      const half = 128 * KiB;
      await patch(at(a, location), 0, data.subarray(0, half));
      await a.stop();
      a = two.a = await startServer(env);
      await patch(at(a, location), half, data.subarray(half));
      return idOf(location);
    });
  });
});

// A large FSEQ's first bytes are summarised as they arrive (type sniff, header), so processing reads
// none of its bytes back. Shown by receiving on an API-only instance, overwriting the stored head
// before any worker runs, and only then starting one: the record is what the bytes that arrived
// say (read back, the zeros would be rejected as not an FSEQ file).
describe('first bytes summarised on arrival', () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let api: TestServer;
  let worker: TestServer | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    env = await serverEnv({ databaseUrl: db.url, storage: 'file' });
    api = await startServer({ ...env, ROLE: 'api' });
  });
  afterAll(async () => {
    await worker?.stop();
    await api?.stop();
    await db?.drop();
  });

  it('gives processing the FSEQ header and the type without a read, and checks the size there', async () => {
    const whole = buildFseqV2({ channels: 4096, frames: 400 });
    // One byte short of what its header says: the size check at processing rejects it.
    const short = buildFseqV2({ channels: 4096, frames: 400, lie: { truncateBy: 1 } });
    expect(whole.length).toBeGreaterThan(1024 * KiB);
    const ids: string[] = [];
    for (const [data, name] of [[whole, 'whole.fseq'], [short, 'short.fseq']] as const) {
      const response = await fetch(`${api.url}/files`, {
        method: 'POST',
        headers: { ...TUS, ...OCTETS, 'Upload-Length': String(data.length), 'Upload-Metadata': metadata(name) },
        body: Buffer.from(data),
      });
      expect(response.status).toBe(201);
      ids.push(idOf(response.headers.get('location')!));
    }
    for (const id of ids) {
      const file = path.join(env.DATA_DIR!, 'files', id);
      const handle = await open(file, 'r+');
      await handle.write(Buffer.alloc(64 * KiB), 0, 64 * KiB, 0);
      await handle.close();
    }
    worker = await startServer({ ...env, ROLE: 'worker' });
    const ready = await waitForFinal(api.url, ids[0]!);
    expect(ready).toMatchObject({ status: 'ready', kind: 'fseq', sha256: sha256(whole), md5: md5(whole) });
    expect(ready.metadata).toMatchObject({ channelCount: 4096, frameCount: 400 });
    const rejected = await waitForFinal(api.url, ids[1]!);
    expect(rejected.status).toBe('rejected');
    expect(rejected.rejectionReason).toMatch(/size|bytes/i);
  });
});

/**
 * A PATCH whose client stops after `sent` bytes of a body announced whole: the request half-closes
 * (every sent byte reaches the server, then the body ends early) and the answer, if any, is ignored.
 */
function cutPatch(location: string, data: Buffer, sent: number): Promise<void> {
  const target = new URL(location);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(target.port), target.hostname, () => {
      socket.write(
        `PATCH ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n` +
          `Content-Type: application/offset+octet-stream\r\nContent-Length: ${data.length}\r\n\r\n`,
      );
      socket.end(data.subarray(0, sent));
    });
    socket.on('error', reject);
    socket.on('close', () => resolve());
    socket.resume();
  });
}

/** An IETF-draft (interop 6) creation carrying the whole file; resolves with the final answer. */
function ietfCreate(url: string, data: Buffer): Promise<{ status: number; location: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, {
      method: 'POST',
      headers: {
        'Upload-Draft-Interop-Version': '6',
        'Upload-Complete': '?1',
        'Content-Disposition': 'attachment; filename="draft.bin"',
        'Content-Type': 'application/octet-stream',
        'Content-Length': String(data.length),
      },
    });
    // The 104 announces the upload's URL; the final answer may repeat it.
    let location = '';
    request.on('information', (info) => {
      if (typeof info.headers.location === 'string') location = info.headers.location;
    });
    request.on('response', (response) => {
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0, location: String(response.headers.location ?? location) }));
    });
    request.on('error', reject);
    request.end(data);
  });
}
