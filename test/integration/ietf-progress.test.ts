// The IETF draft's progress 104s (issue 20): while a long append or creation-with-body arrives,
// the server sends `104 Upload Resumption Supported` with `Upload-Offset` — only offsets the store
// has made durable (an fdatasync of the file, a stored S3 part), so a SIGKILL right after one
// cannot take it back: HEAD after the restart reports at least that offset. Only for interop
// versions that define them (5 and later), never for tus, over real HTTP, Postgres and moto.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { send, type Answer } from '../support/interim-client.js';
import { waitFor } from '../support/ports.js';
import { restartServer, serverEnv, spawnServer, startServer, type ChildServer, type TestServer } from '../support/server.js';
import { idOf, sha256 } from '../support/tus.js';

const MiB = 1 << 20;
// The file store fdatasyncs every 16 MiB of a body; S3 stores a part every S3_PART_SIZE (8 MiB).
const DURABLE_STEP = { file: 16 * MiB, s3: 8 * MiB } as const;

const progressOf = (answer: Answer) => answer.interim.filter((i) => i.status === 104 && i.headers['upload-offset'] !== undefined);

/** Creates an unfinished draft upload of `length` bytes holding `first` bytes. */
async function create(endpoint: string, version: string, length: number, first: Buffer): Promise<string> {
  const created = await send(
    endpoint,
    'POST',
    { 'Upload-Draft-Interop-Version': version, 'Upload-Complete': '?0', 'Upload-Length': String(length), 'Content-Disposition': 'attachment; filename="long.bin"' },
    first,
  );
  expect(created.status).toBe(201);
  return String(created.headers.location);
}

const appendHeaders = (version: string, offset: number) => ({
  'Upload-Draft-Interop-Version': version,
  'Upload-Offset': String(offset),
  'Upload-Complete': '?1',
  ...(Number(version) >= 6 ? { 'Content-Type': 'application/partial-upload' } : {}),
});

for (const storage of ['file', 's3'] as const)
  describe(`IETF draft progress 104s (${storage} storage)`, () => {
    let db: TestDatabase;
    let server: TestServer;
    let endpoint: string;
    const size = 2 * DURABLE_STEP[storage] + 2 * MiB;

    beforeAll(async () => {
      db = await createTestDatabase();
      server = await startServer(await serverEnv({ databaseUrl: db.url, storage }));
      endpoint = `${server.url}/files`;
    });
    afterAll(async () => {
      await server?.stop();
      await db?.drop();
    });

    it('a long append (interop 8) gets progress 104s with rising offsets within the body, no Location, then 200', async () => {
      const body = randomBytes(size);
      const location = await create(endpoint, '8', size, body.subarray(0, 1000));
      const done = await send(location, 'PATCH', appendHeaders('8', 1000), body.subarray(1000), { pauseForProgressAt: DURABLE_STEP[storage] + MiB });
      expect(done.status).toBe(200);
      expect(done.headers['upload-offset']).toBe(String(size));
      const progress = progressOf(done);
      expect(progress.length).toBeGreaterThanOrEqual(1);
      const offsets = progress.map((i) => Number(i.headers['upload-offset']));
      for (const [i, offset] of offsets.entries()) {
        expect(offset).toBeGreaterThan(i === 0 ? 1000 : offsets[i - 1]!);
        expect(offset).toBeLessThan(size);
      }
      for (const interim of progress) {
        expect(interim.headers.location).toBeUndefined();
        expect(interim.headers['upload-draft-interop-version']).toBe('8');
      }
      expect(await waitForFinal(server.url, idOf(location))).toMatchObject({ status: 'ready', sha256: sha256(body), size });
    });

    it('a long creation-with-body (interop 5) gets its Location 104, then progress 104s, then 200 with the record', async () => {
      const body = randomBytes(size);
      const done = await send(
        endpoint,
        'POST',
        { 'Upload-Draft-Interop-Version': '5', 'Upload-Complete': '?1', 'Content-Disposition': 'attachment; filename="whole.bin"' },
        body,
        { pauseForProgressAt: DURABLE_STEP[storage] + MiB },
      );
      expect(done.status).toBe(200);
      const [first, ...rest] = done.interim;
      expect(first).toMatchObject({ status: 104 });
      expect(typeof first!.headers.location).toBe('string');
      expect(rest.length).toBeGreaterThanOrEqual(1);
      for (const interim of rest) {
        expect(interim.status).toBe(104);
        expect(interim.headers.location).toBeUndefined();
        expect(Number(interim.headers['upload-offset'])).toBeLessThan(size);
      }
      const record = JSON.parse(done.body) as { id: string; size: number };
      expect(record).toMatchObject({ id: idOf(String(first!.headers.location)), size });
      expect(await waitForFinal(server.url, record.id)).toMatchObject({ status: 'ready', sha256: sha256(body) });
    });

    it('interop 4 (which has no progress 104s) and tus get none for the same append', async () => {
      const body = randomBytes(size);
      const v4 = await create(endpoint, '4', size, body.subarray(0, 1000));
      const done4 = await send(v4, 'PATCH', appendHeaders('4', 1000), body.subarray(1000));
      expect(done4.status).toBe(200);
      expect(done4.interim).toEqual([]);

      const tus = await send(endpoint, 'POST', { 'Tus-Resumable': '1.0.0', 'Upload-Length': String(size), 'Upload-Metadata': `filename ${Buffer.from('tus.bin').toString('base64')}` }, Buffer.alloc(0));
      expect(tus.status).toBe(201);
      const patched = await send(String(tus.headers.location), 'PATCH', { 'Tus-Resumable': '1.0.0', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, body);
      expect(patched.status).toBe(204);
      expect(patched.interim).toEqual([]);
    });
  });

for (const storage of ['file', 's3'] as const)
  describe(`IETF draft progress 104s are durable: SIGKILL right after one (${storage} storage)`, () => {
    let db: TestDatabase;
    let server: ChildServer | undefined;

    beforeAll(async () => {
      db = await createTestDatabase();
    });
    afterAll(async () => {
      await server?.kill('SIGKILL');
      await db?.drop();
    });

    it('after the restart HEAD reports at least the offset of the last progress 104, and the upload completes byte-identical', async () => {
      const env = await serverEnv({ databaseUrl: db.url, storage });
      server = await spawnServer(env);
      const size = DURABLE_STEP[storage] + 8 * MiB;
      const body = randomBytes(size);
      const location = await create(`${server.url}/files`, '6', size, body.subarray(0, 1000));

      let announced = 0;
      let killed: Promise<ChildServer> | undefined;
      const running = server;
      // The client sends a little more than one durable step, then stalls: the server cannot
      // finish the append before it is killed.
      await send(location, 'PATCH', appendHeaders('6', 1000), body.subarray(1000), {
        stallAfter: DURABLE_STEP[storage] + 2 * MiB,
        onInterim: (interim) => {
          if (interim.status !== 104 || killed) return;
          announced = Number(interim.headers['upload-offset']);
          killed = restartServer(running, env);
        },
      }).catch(() => null);
      expect(killed, 'a progress 104 arrived before the append ended').toBeDefined();
      server = await killed!;
      expect(announced).toBeGreaterThan(1000);

      const v = { 'Upload-Draft-Interop-Version': '6' };
      const head = await send(location, 'HEAD', v, Buffer.alloc(0));
      expect(head.status).toBe(204);
      expect(head.headers['upload-complete']).toBe('?0');
      const offset = Number(head.headers['upload-offset']);
      expect(offset).toBeGreaterThanOrEqual(announced);
      const done = await send(location, 'PATCH', appendHeaders('6', offset), body.subarray(offset));
      expect(done.status).toBe(200);
      expect(await waitForFinal(server.url, idOf(location))).toMatchObject({ status: 'ready', sha256: sha256(body), size });
    });

    it(`each request's log line says its protocol (tus, ietf-draft with the interop version${storage === 's3' ? ', s3-direct' : ''})`, async () => {
      const running = server!;
      const requests: Array<{ id: string; expected: Record<string, unknown>; send(): Promise<Response> }> = [
        {
          id: `log-tus-${storage}`,
          expected: { protocol: 'tus' },
          send: () => fetch(`${running.url}/files`, { method: 'POST', headers: { 'X-Request-ID': `log-tus-${storage}`, 'Tus-Resumable': '1.0.0', 'Upload-Length': '3' } }),
        },
        {
          id: `log-ietf-${storage}`,
          expected: { protocol: 'ietf-draft', interopVersion: 7 },
          send: () => fetch(`${running.url}/files`, { method: 'POST', headers: { 'X-Request-ID': `log-ietf-${storage}`, 'Upload-Draft-Interop-Version': '7', 'Upload-Complete': '?0' } }),
        },
        ...(storage === 's3'
          ? [
              {
                id: 'log-direct-s3',
                expected: { protocol: 's3-direct' },
                send: () => fetch(`${running.url}/api/s3/params?filename=a.bin&type=application/octet-stream`, { headers: { 'X-Request-ID': 'log-direct-s3' } }),
              },
            ]
          : []),
      ];
      for (const request of requests) expect((await request.send()).status).toBeLessThan(300);
      for (const request of requests) {
        const line = await waitFor(
          () =>
            running
              .output()
              .split('\n')
              .filter((text) => text.startsWith('{'))
              .map((text) => JSON.parse(text) as Record<string, unknown>)
              .find((record) => record.reqId === request.id && record.msg === 'request completed'),
          { timeoutMs: 10_000, what: `the log line of ${request.id}` },
        );
        expect(line).toMatchObject(request.expected);
      }
    });
  });
