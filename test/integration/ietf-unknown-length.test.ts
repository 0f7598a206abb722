// The IETF draft: a request that completes an upload of unknown length (`Upload-Complete: ?1`, no
// Upload-Length, no Content-Length: a chunked body) — the length is what arrived, declared under
// the upload lock once the body is whole, and the upload is finished (issue 20). A body that does
// not arrive whole leaves the upload resumable with its length unknown; such a creation holds no
// more than the owner's quota has room for. Creation and append, on both stores, over real HTTP
// and Postgres.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { send } from '../support/interim-client.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';
import { idOf, sha256 } from '../support/tus.js';

const v = { 'Upload-Draft-Interop-Version': '8' };
const partial = { ...v, 'Content-Type': 'application/partial-upload' };

for (const storage of ['file', 's3'] as const)
  describe(`IETF draft: completing an upload of unknown length with a chunked body (${storage} storage)`, () => {
    let db: TestDatabase;
    let server: TestServer;
    let endpoint: string;

    beforeAll(async () => {
      db = await createTestDatabase();
      server = await startServer(await serverEnv({ databaseUrl: db.url, storage }));
      endpoint = `${server.url}/files`;
    });
    afterAll(async () => {
      await server?.stop();
      await db?.drop();
    });

    it('a chunked creation with Upload-Complete: ?1 is declared at what arrived, finished, and answers 200 with the record', async () => {
      const body = randomBytes(3 << 20);
      const done = await send(endpoint, 'POST', { ...v, 'Upload-Complete': '?1', 'Content-Disposition': 'attachment; filename="chunked.bin"' }, body, { chunked: true });
      expect(done.status).toBe(200);
      expect(done.interim[0]).toMatchObject({ status: 104 });
      const location = String(done.interim[0]!.headers.location);
      expect(done.headers).toMatchObject({ 'upload-complete': '?1', 'upload-offset': String(body.length), 'upload-length': String(body.length) });
      expect(done.headers['upload-expires']).toBeUndefined();
      expect(JSON.parse(done.body)).toMatchObject({ id: idOf(location), filename: 'chunked.bin', size: body.length, transport: 'ietf' });
      expect(await waitForFinal(server.url, idOf(location))).toMatchObject({ status: 'ready', sha256: sha256(body), size: body.length });
      // Complete: HEAD says so, and nothing more is accepted.
      const head = await send(location, 'HEAD', v, Buffer.alloc(0));
      expect(head.headers).toMatchObject({ 'upload-complete': '?1', 'upload-offset': String(body.length) });
    });

    it('an empty chunked creation with Upload-Complete: ?1 is a complete upload of 0 bytes', async () => {
      const done = await send(endpoint, 'POST', { ...v, 'Upload-Complete': '?1', 'Content-Disposition': 'attachment; filename="empty.bin"' }, Buffer.alloc(0), { chunked: true });
      expect(done.status).toBe(200);
      expect(done.headers).toMatchObject({ 'upload-complete': '?1', 'upload-offset': '0', 'upload-length': '0' });
      const { id } = JSON.parse(done.body) as { id: string };
      expect(await waitForFinal(server.url, id)).toMatchObject({ status: 'ready', size: 0, sha256: sha256(Buffer.alloc(0)) });
    });

    it('a chunked append with Upload-Complete: ?1 to an upload of unknown length completes it at where it ends', async () => {
      const body = randomBytes(2 << 20);
      const created = await send(endpoint, 'POST', { ...v, 'Upload-Complete': '?0', 'Content-Disposition': 'attachment; filename="later.bin"' }, body.subarray(0, 1000));
      expect(created.status).toBe(201);
      const location = String(created.headers.location);
      const done = await send(location, 'PATCH', { ...partial, 'Upload-Offset': '1000', 'Upload-Complete': '?1' }, body.subarray(1000), { chunked: true });
      expect(done.status).toBe(200);
      expect(done.headers).toMatchObject({ 'upload-complete': '?1', 'upload-offset': String(body.length), 'upload-length': String(body.length) });
      expect(JSON.parse(done.body)).toMatchObject({ id: idOf(location), size: body.length });
      expect(await waitForFinal(server.url, idOf(location))).toMatchObject({ status: 'ready', sha256: sha256(body), size: body.length });
    });

    it('a chunked completing append that does not arrive whole leaves the upload resumable, its length unknown', async () => {
      const body = randomBytes(2 << 20);
      const created = await send(endpoint, 'POST', { ...v, 'Upload-Complete': '?0', 'Content-Disposition': 'attachment; filename="stalled.bin"' }, Buffer.alloc(0));
      const location = String(created.headers.location);
      // The append stalls half-way; a HEAD (the client gave up on it) ends it.
      const stalled = send(location, 'PATCH', { ...partial, 'Upload-Offset': '0', 'Upload-Complete': '?1' }, body, { chunked: true, stallAfter: 1 << 20 });
      let head = await send(location, 'HEAD', v, Buffer.alloc(0));
      // The HEAD may come before the append took the upload: then it reports 0 and is asked again.
      for (let tries = 0; Number(head.headers['upload-offset']) === 0 && tries < 100; tries++) {
        await new Promise((r) => setTimeout(r, 100));
        head = await send(location, 'HEAD', v, Buffer.alloc(0));
      }
      const ended = await stalled;
      expect(ended.status).toBe(204);
      expect(ended.headers['upload-complete']).toBe('?0');
      head = await send(location, 'HEAD', v, Buffer.alloc(0));
      expect(head.headers['upload-complete']).toBe('?0');
      expect(head.headers['upload-length']).toBeUndefined();
      const offset = Number(head.headers['upload-offset']);
      expect(offset).toBeGreaterThan(0);
      expect(offset).toBeLessThanOrEqual(1 << 20);
      const done = await send(location, 'PATCH', { ...partial, 'Upload-Offset': String(offset), 'Upload-Complete': '?1' }, body.subarray(offset), { chunked: true });
      expect(done.status).toBe(200);
      expect(await waitForFinal(server.url, idOf(location))).toMatchObject({ status: 'ready', sha256: sha256(body), size: body.length });
    });
  });

describe('IETF draft: a chunked completing creation is bounded by the quota', () => {
  let db: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage: 'file', extra: { QUOTA_MAX_BYTES: '1MiB' } }));
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('a body beyond what the quota has room for is refused with a 413, and nothing is held beyond the quota', async () => {
    const done = await send(`${server.url}/files`, 'POST', { ...v, 'Upload-Complete': '?1', 'Content-Disposition': 'attachment; filename="big.bin"' }, randomBytes(2 << 20), { chunked: true });
    expect(done.status).toBe(413);
    expect(done.headers['content-type']).toMatch(/json/);
    const quota = async () => (await (await fetch(`${server.url}/api/me/quota`)).json()) as { usedBytes: number; reservedBytes: number; maxBytes: number };
    const held = await quota();
    expect(held.maxBytes).toBe(1 << 20);
    expect(held.usedBytes + held.reservedBytes).toBeLessThanOrEqual(1 << 20);
    // The refused upload (its URL came with the 104) is unfinished: cancelled, its bytes go.
    const location = String(done.interim[0]!.headers.location);
    expect((await send(location, 'HEAD', v, Buffer.alloc(0))).headers['upload-complete']).toBe('?0');
    expect((await send(location, 'DELETE', v, Buffer.alloc(0))).status).toBe(204);
    expect((await quota()).reservedBytes).toBe(0);
    // What fits completes.
    const small = randomBytes(300 << 10);
    const fits = await send(`${server.url}/files`, 'POST', { ...v, 'Upload-Complete': '?1', 'Content-Disposition': 'attachment; filename="fits.bin"' }, small, { chunked: true });
    expect(fits.status).toBe(200);
    expect(await waitForFinal(server.url, (JSON.parse(fits.body) as { id: string }).id)).toMatchObject({ status: 'ready', sha256: sha256(small) });
    expect(await quota()).toMatchObject({ usedBytes: small.length, reservedBytes: 0 });
  });
});
