// Disk storage answers an upload's tus info (length, metadata) from its record, and keeps
// @tus/file-store's `<id>.json` only where the record cannot say the same: an upload created
// without a length, or metadata whose keys jsonb would reorder. Real PostgreSQL decides what
// "reorder" means; a restarted server resumes both kinds.
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inJsonbOrder } from '../../src/storage/tus-info.js';
import { waitForFinal } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';
import { sha256 } from '../support/tus.js';
import { meta, OCTET, TUS } from '../protocol/support.js';

describe('tus info of uploads on disk', () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let server: TestServer;
  const files = async () => readdir(path.join(env.DATA_DIR!, 'files'));
  const create = async (headers: Record<string, string>) => {
    const response = await fetch(`${server.url}/files`, { method: 'POST', headers: { ...TUS, ...headers } });
    expect(response.status).toBe(201);
    return response.headers.get('location')!.replace(/^http:\/\/[^/]+/, '');
  };
  const patch = (location: string, offset: number, body: Buffer, headers: Record<string, string> = {}) =>
    fetch(server.url + location, { method: 'PATCH', headers: { ...TUS, ...OCTET, 'Upload-Offset': String(offset), ...headers }, body: Buffer.from(body) });
  const idOf = (location: string) => location.split('/').pop()!;
  const head = (location: string) => fetch(server.url + location, { method: 'HEAD', headers: TUS });

  beforeAll(async () => {
    db = await createTestDatabase();
    env = await serverEnv({ databaseUrl: db.url, storage: 'file' });
    server = await startServer(env);
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('knows the key order jsonb keeps, as PostgreSQL keeps it', async () => {
    const keySets = [
      ['filename', 'filetype'],
      ['filetype', 'filename'],
      ['name', 'type', 'filename', 'filetype'],
      ['relativePath', 'name', 'type', 'filetype', 'filename'],
      ['a', 'b', 'aa'],
      ['b', 'a'],
      ['e', 'é'],
      ['é', 'f'],
      ['filename'],
      [],
    ];
    for (const keys of keySets) {
      const object = Object.fromEntries(keys.map((key) => [key, 'v']));
      const [row] = await db.sql<{ keys: string[] }[]>`select coalesce(array(select jsonb_object_keys(${JSON.stringify(object)}::text::jsonb)), '{}') as keys`;
      expect({ keys, kept: inJsonbOrder(object) }).toEqual({ keys, kept: JSON.stringify(row!.keys) === JSON.stringify(keys) });
    }
  });

  it('keeps a .json only where the record cannot say the same, and a restarted server resumes every kind', async () => {
    const data = randomBytes(300_000);
    // Uppy's order (filetype before filename): jsonb would return filename first.
    const reordered = `${meta({ filetype: 'application/octet-stream', filename: 'uppy.bin' })},flag`;
    const known = await create({ 'Upload-Length': String(data.length), 'Upload-Metadata': meta({ filename: 'known.bin', filetype: 'application/octet-stream' }) });
    const kept = await create({ 'Upload-Length': String(data.length), 'Upload-Metadata': reordered });
    const deferred = await create({ 'Upload-Defer-Length': '1', 'Upload-Metadata': meta({ filename: 'later.bin' }) });
    for (const location of [known, kept, deferred]) expect((await patch(location, 0, data.subarray(0, 100_000))).status).toBe(204);

    const names = await files();
    expect(names).toContain(idOf(known));
    expect(names).not.toContain(`${idOf(known)}.json`);
    expect(names).toContain(`${idOf(kept)}.json`);
    expect(names).toContain(`${idOf(deferred)}.json`);

    await server.stop();
    server = await startServer(env);

    const knownHead = await head(known);
    expect(knownHead.headers.get('upload-offset')).toBe('100000');
    expect(knownHead.headers.get('upload-length')).toBe(String(data.length));
    expect(knownHead.headers.get('upload-metadata')).toBe(meta({ filename: 'known.bin', filetype: 'application/octet-stream' }));
    expect((await head(kept)).headers.get('upload-metadata')).toBe(reordered);
    const deferredHead = await head(deferred);
    expect(deferredHead.headers.get('upload-defer-length')).toBe('1');
    expect(deferredHead.headers.get('upload-offset')).toBe('100000');

    expect((await patch(known, 100_000, data.subarray(100_000))).status).toBe(204);
    expect((await patch(kept, 100_000, data.subarray(100_000))).status).toBe(204);
    const declared = await patch(deferred, 100_000, data.subarray(100_000), { 'Upload-Length': String(data.length) });
    expect(declared.status).toBe(204);
    expect(declared.headers.get('upload-offset')).toBe(String(data.length));
    for (const location of [known, kept, deferred]) {
      const record = await waitForFinal(server.url, idOf(location));
      expect({ status: record.status, sha256: record.sha256 }).toEqual({ status: 'ready', sha256: sha256(data) });
    }
  });
});
