// The files API over real HTTP against real Postgres and both stores: pagination while uploads
// arrive, downloads with Range / ETag / safe Content-Disposition, signed links, deletion with
// reference-counted blobs and quota given back, and owner isolation.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal, type FileRecord } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { serverEnv, startServer, type StorageKind, type TestServer } from '../support/server.js';
import { sha256, upload } from '../support/tus.js';

describe.each<StorageKind>(['file', 's3'])('files API with %s storage', (storage) => {
  let db: TestDatabase;
  let server: TestServer;
  let alice: Record<string, string>;
  let bob: Record<string, string>;

  const send = async (data: Buffer, filename: string, headers = alice): Promise<FileRecord> => {
    const id = await upload(data, { endpoint: `${server.url}/files`, filename, headers });
    return waitForFinal(server.url, id, { headers });
  };
  const api = (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) =>
    fetch(`${server.url}/api${path}`, { ...init, headers: { ...alice, ...init.headers } });

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage, extra: jwtEnv() }));
    alice = await bearer(`alice-${storage}`);
    bob = await bearer(`bob-${storage}`);
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('pages through files newest first without duplicates or gaps while uploads arrive', async () => {
    const before = [];
    for (let i = 0; i < 9; i++) before.push(await send(randomBytes(100 + i), `page-${i}.bin`));
    const seen: string[] = [];
    let cursor: string | null = null;
    let arrivals = 0;
    do {
      const response = await api(`/files?limit=4${cursor ? `&cursor=${cursor}` : ''}`);
      expect(response.status).toBe(200);
      const page = (await response.json()) as { files: FileRecord[]; nextCursor: string | null };
      expect(page.files.length).toBeLessThanOrEqual(4);
      seen.push(...page.files.map((f) => f.id));
      cursor = page.nextCursor;
      // New uploads arrive between pages.
      if (arrivals++ < 2) await send(randomBytes(50), `arrival-${arrivals}.bin`);
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    for (const file of before) expect(seen).toContain(file.id);
    // Newest first: the files that existed before paging appear in reverse creation order.
    const positions = before.map((f) => seen.indexOf(f.id));
    expect([...positions].sort((a, b) => b - a)).toEqual(positions);
  });

  it('filters by status and kind and validates the query', async () => {
    const ready = (await (await api('/files?status=ready&limit=200')).json()) as { files: FileRecord[] };
    expect(ready.files.length).toBeGreaterThan(0);
    expect(ready.files.every((f) => f.status === 'ready')).toBe(true);
    const fseq = (await (await api('/files?kind=fseq')).json()) as { files: FileRecord[] };
    expect(fseq.files).toEqual([]);
    const bad = await api('/files?limit=100000');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('VALIDATION_ERROR');
    const badCursor = await api('/files?cursor=not-a-cursor');
    expect(badCursor.status).toBe(400);
  });

  describe('downloads', () => {
    let file: FileRecord;
    let data: Buffer;
    beforeAll(async () => {
      data = randomBytes(1000);
      file = await send(data, 'range.bin');
    });
    const content = (headers: Record<string, string> = {}) => api(`/files/${file.id}/content`, { headers });

    it('serves the whole file with an ETag from its SHA-256', async () => {
      const response = await content();
      expect(response.status).toBe(200);
      expect(response.headers.get('etag')).toBe(`"${sha256(data)}"`);
      expect(response.headers.get('accept-ranges')).toBe('bytes');
      expect(response.headers.get('content-length')).toBe('1000');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(Buffer.from(await response.arrayBuffer()).equals(data)).toBe(true);
    });

    it('answers If-None-Match with 304', async () => {
      const response = await content({ 'If-None-Match': `"${sha256(data)}"` });
      expect(response.status).toBe(304);
    });

    it.each([
      ['bytes=0-99', 0, 99],
      ['bytes=900-', 900, 999],
      ['bytes=-50', 950, 999],
      ['bytes=10-10', 10, 10],
      ['bytes=500-5000', 500, 999],
    ])('serves Range %s as 206', async (range, start, end) => {
      const response = await content({ Range: range });
      expect(response.status).toBe(206);
      expect(response.headers.get('content-range')).toBe(`bytes ${start}-${end}/1000`);
      expect(Buffer.from(await response.arrayBuffer()).equals(data.subarray(start, end + 1))).toBe(true);
    });

    it('answers an unsatisfiable range with 416 and the size', async () => {
      const response = await content({ Range: 'bytes=1000-2000' });
      expect(response.status).toBe(416);
      expect(response.headers.get('content-range')).toBe('bytes */1000');
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('RANGE_NOT_SATISFIABLE');
    });

    it('serves the whole file for several ranges, and for a range whose If-Range is stale', async () => {
      const multi = await content({ Range: 'bytes=0-1,5-6' });
      expect(multi.status).toBe(200);
      expect((await multi.arrayBuffer()).byteLength).toBe(1000);
      const stale = await content({ Range: 'bytes=0-1', 'If-Range': '"something-else"' });
      expect(stale.status).toBe(200);
    });

    it('serves ranges of a multi-megabyte file', async () => {
      const big = randomBytes(6 * 1024 * 1024 + 3);
      const record = await send(big, 'big.bin');
      const response = await api(`/files/${record.id}/content`, { headers: { Range: 'bytes=5242870-5242899' } });
      expect(response.status).toBe(206);
      expect(Buffer.from(await response.arrayBuffer()).equals(big.subarray(5242870, 5242900))).toBe(true);
      const tail = await api(`/files/${record.id}/content`, { headers: { Range: 'bytes=-3' } });
      expect(Buffer.from(await tail.arrayBuffer()).equals(big.subarray(-3))).toBe(true);
    });

    it('serves HEAD with the headers and no body', async () => {
      const response = await api(`/files/${file.id}/content`, { method: 'HEAD' });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-length')).toBe('1000');
      expect(response.headers.get('etag')).toBe(`"${sha256(data)}"`);
    });
  });

  it.each([
    ['../../secret/x.bin', 'attachment; filename="x.bin"'],
    ['my "best" show.bin', 'attachment; filename="my \\"best\\" show.bin"'],
    ['🎄 show.bin', `attachment; filename="_ show.bin"; filename*=UTF-8''%F0%9F%8E%84%20show.bin`],
    ['naïve café.bin', `attachment; filename="naive cafe.bin"; filename*=UTF-8''na%C3%AFve%20caf%C3%A9.bin`],
  ])('gives %j a safe Content-Disposition', async (name, disposition) => {
    const record = await send(randomBytes(10), name);
    const response = await api(`/files/${record.id}/content`);
    expect(response.headers.get('content-disposition')).toBe(disposition);
  });

  it('refuses to serve a file that is not ready, saying its status', async () => {
    const create = await fetch(`${server.url}/files`, {
      method: 'POST',
      headers: { ...alice, 'Tus-Resumable': '1.0.0', 'Upload-Length': '10', 'Upload-Metadata': `filename ${Buffer.from('wip.bin').toString('base64')}` },
    });
    const id = create.headers.get('location')!.split('/').pop()!;
    const response = await api(`/files/${id}/content`);
    expect(response.status).toBe(409);
    expect(await response.json()).toMatchObject({ error: { code: 'FILE_NOT_READY', status: 'uploading' } });
  });

  it('hands out signed links that work without a token, for that file only, until they expire', async () => {
    const data = randomBytes(64);
    const record = await send(data, 'linked.bin');
    const other = await send(randomBytes(64), 'other.bin');
    const response = await api(`/files/${record.id}/download-url`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ expiresIn: 60 }),
    });
    expect(response.status).toBe(200);
    const link = (await response.json()) as { url: string; expiresAt: string };
    expect(Date.parse(link.expiresAt)).toBeGreaterThan(Date.now());
    const download = await fetch(`${server.url}${link.url}`);
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(data)).toBe(true);

    const tampered = await fetch(`${server.url}${link.url.replace(/sig=[^&]+/, 'sig=AAAA')}`);
    expect(tampered.status).toBe(403);
    const elsewhere = await fetch(`${server.url}${link.url.replace(record.id, other.id)}`);
    expect(elsewhere.status).toBe(403);
    const expired = await fetch(`${server.url}${link.url.replace(/expires=\d+/, 'expires=1000')}`);
    expect(expired.status).toBe(403);
    const noToken = await fetch(`${server.url}/api/files/${record.id}/content`);
    expect(noToken.status).toBe(401);
  });

  it('answers another owner exactly as for a missing file', async () => {
    const record = await send(randomBytes(32), 'private.bin');
    const missing = 'f'.repeat(32);
    for (const path of [`/files/${record.id}`, `/files/${record.id}/content`]) {
      const theirs = await api(path, { headers: bob });
      const none = await api(path.replace(record.id, missing), { headers: bob });
      expect(theirs.status).toBe(404);
      expect(none.status).toBe(404);
      expect(await theirs.json()).toEqual(await none.json());
    }
    const deleteTheirs = await api(`/files/${record.id}`, { method: 'DELETE', headers: bob });
    expect(deleteTheirs.status).toBe(404);
    expect((await api(`/files/${record.id}`)).status).toBe(200);
  });

  it('deletes a file, keeps shared bytes until the last reference goes, and gives the quota back', async () => {
    const owner = `deleter-${storage}`;
    const headers = await bearer(owner);
    const data = randomBytes(4096);
    const first = await send(data, 'one.bin', headers);
    const second = await send(data, 'two.bin', headers);
    expect(second.deduplicated).toBe(true);
    const quota = async () => (await (await api('/me/quota', { headers })).json()) as { usedBytes: number; fileCount: number };
    expect(await quota()).toMatchObject({ usedBytes: 8192, fileCount: 2 });

    expect((await api(`/files/${first.id}`, { method: 'DELETE', headers })).status).toBe(204);
    expect((await api(`/files/${first.id}`, { headers })).status).toBe(404);
    expect(await quota()).toMatchObject({ usedBytes: 4096, fileCount: 1 });
    // The bytes are still there for the second file.
    const still = await api(`/files/${second.id}/content`, { headers });
    expect(Buffer.from(await still.arrayBuffer()).equals(data)).toBe(true);
    const [blob] = await db.sql<{ ref_count: number }[]>`select ref_count from blobs where sha256 = ${sha256(data)}`;
    expect(Number(blob!.ref_count)).toBe(1);

    expect((await api(`/files/${second.id}`, { method: 'DELETE', headers })).status).toBe(204);
    expect(await quota()).toMatchObject({ usedBytes: 0, fileCount: 0 });
    const blobs = await db.sql`select 1 from blobs where sha256 = ${sha256(data)}`;
    expect(blobs).toHaveLength(0);
    const audit = await db.sql<{ action: string }[]>`
      select action from audit_log where upload_id in (${first.id}, ${second.id}) and action = 'FILE_DELETED'`;
    expect(audit).toHaveLength(2);
  });
});
