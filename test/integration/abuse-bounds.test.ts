// What one owner can make the server hold: bytes of unknown length count against the quota as
// they arrive, a final upload's every listed part counts and their number is capped, and unfinished
// uploads are bounded per owner in number and in reserved bytes. Over real HTTP, real Postgres.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';
import { idOf } from '../support/tus.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
const OCTET = { 'Content-Type': 'application/offset+octet-stream' };
const metadata = (name: string) => `filename ${Buffer.from(name).toString('base64')}`;

describe('abuse bounds', () => {
  let db: TestDatabase;
  let server: TestServer;
  let admin: Record<string, string>;

  const owner = async (name: string, limits: Record<string, number | null> = {}) => {
    const headers = await bearer(name);
    if (Object.keys(limits).length > 0) {
      const response = await fetch(`${server.url}/api/admin/quotas/${name}`, {
        method: 'PUT',
        headers: { ...admin, 'Content-Type': 'application/json' },
        body: JSON.stringify(limits),
      });
      expect(response.status).toBe(200);
    }
    return headers;
  };
  const quota = async (headers: Record<string, string>) =>
    (await (await fetch(`${server.url}/api/me/quota`, { headers })).json()) as { usedBytes: number; reservedBytes: number };
  const create = (headers: Record<string, string>, length: number | null, extra: Record<string, string> = {}, body?: Uint8Array) =>
    fetch(`${server.url}/files`, {
      method: 'POST',
      headers: {
        ...headers,
        ...TUS,
        ...(length === null ? { 'Upload-Defer-Length': '1' } : { 'Upload-Length': String(length) }),
        'Upload-Metadata': metadata('bounded.bin'),
        ...(body ? OCTET : {}),
        ...extra,
      },
      ...(body ? { body: new Uint8Array(body) } : {}),
    });
  const patch = (headers: Record<string, string>, url: string, offset: number, body: Uint8Array, extra: Record<string, string> = {}) =>
    fetch(url, { method: "PATCH", headers: { ...headers, ...TUS, ...OCTET, "Upload-Offset": String(offset), ...extra }, body: new Uint8Array(body) });
  const offsetOf = async (headers: Record<string, string>, url: string) =>
    Number((await fetch(url, { method: 'HEAD', headers: { ...headers, ...TUS } })).headers.get('upload-offset'));
  const code = async (response: Response) => ((await response.json()) as { error: { code: string } }).error.code;

  /** A PATCH whose body is chunked (no Content-Length), as curl -T - sends it. */
  const chunkedPatch = (headers: Record<string, string>, url: string, offset: number, body: Buffer) =>
    new Promise<number>((resolve, reject) => {
      const target = new URL(url);
      const request = http.request(
        {
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'PATCH',
          headers: { ...headers, ...TUS, ...OCTET, 'Upload-Offset': String(offset), 'Transfer-Encoding': 'chunked' },
        },
        (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
        },
      );
      request.on('error', (error) => (error.message.includes('EPIPE') || error.message.includes('ECONNRESET') ? resolve(-1) : reject(error)));
      for (let i = 0; i < body.length; i += 100) request.write(body.subarray(i, i + 100));
      request.end();
    });

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startServer(
      await serverEnv({
        databaseUrl: db.url,
        storage: 'file',
        extra: jwtEnv({ QUOTA_MAX_UNFINISHED_UPLOADS: '5', QUOTA_MAX_RESERVED_BYTES: '100000', CONCAT_MAX_PARTS: '20' }),
      }),
    );
    admin = await bearer('root', { role: 'admin' });
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  describe('an upload of unknown length', () => {
    it('counts its bytes as they arrive and refuses, before storing, a body the quota cannot hold', async () => {
      const headers = await owner('deferred', { maxBytes: 1000 });
      const url = (await create(headers, null)).headers.get('location')!;
      expect((await patch(headers, url, 0, Buffer.alloc(600, 1))).status).toBe(204);
      expect(await quota(headers)).toMatchObject({ usedBytes: 0, reservedBytes: 600 });

      // The case: 200,000 bytes against a 1,000-byte quota.
      const refused = await patch(headers, url, 600, Buffer.alloc(200_000, 2));
      expect(refused.status).toBe(413);
      expect(await code(refused)).toBe('QUOTA_EXCEEDED');
      expect(await offsetOf(headers, url)).toBe(600);
      expect(await quota(headers)).toMatchObject({ reservedBytes: 600 });

      // Declaring the length and finishing: the file counts exactly its size.
      const last = await patch(headers, url, 600, Buffer.alloc(300, 3), { 'Upload-Length': '900' });
      expect(last.status).toBe(204);
      expect((await waitForFinal(server.url, idOf(url), { headers })).status).toBe('ready');
      expect(await quota(headers)).toMatchObject({ usedBytes: 900, reservedBytes: 0 });
    });

    it('limits a chunked body to what the quota can hold and keeps the reservation to what was stored', async () => {
      const headers = await owner('chunked', { maxBytes: 1000 });
      const url = (await create(headers, null)).headers.get('location')!;
      const status = await chunkedPatch(headers, url, 0, Buffer.alloc(5000, 4));
      expect(status === 413 || status === -1).toBe(true);
      const stored = await offsetOf(headers, url);
      expect(stored).toBeLessThanOrEqual(1000);
      const after = await quota(headers);
      expect(after.reservedBytes).toBe(stored);
      // A chunked body that fits is accepted whole.
      const second = (await create(await owner('chunked-ok', { maxBytes: 10_000 }), null)).headers.get('location')!;
      const okHeaders = await bearer('chunked-ok');
      expect(await chunkedPatch(okHeaders, second, 0, Buffer.alloc(3000, 5))).toBe(204);
      expect(await offsetOf(okHeaders, second)).toBe(3000);
      expect((await quota(okHeaders)).reservedBytes).toBe(3000);
    });

    it('reserves the body of a creation-with-upload and refuses one the quota cannot hold', async () => {
      const headers = await owner('creation', { maxBytes: 1000 });
      const refused = await create(headers, null, {}, Buffer.alloc(2000, 6));
      expect(refused.status).toBe(413);
      expect(await code(refused)).toBe('QUOTA_EXCEEDED');
      expect(await quota(headers)).toMatchObject({ reservedBytes: 0 });
      const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from uploads where owner_id = 'creation' and status = 'uploading'`;
      expect(row!.n).toBe(0);

      const accepted = await create(headers, null, {}, Buffer.alloc(700, 7));
      expect(accepted.status).toBe(201);
      expect(accepted.headers.get('upload-offset')).toBe('700');
      expect(await quota(headers)).toMatchObject({ reservedBytes: 700 });
    });
  });

  describe('concatenation', () => {
    const partial = async (headers: Record<string, string>, size: number) => {
      const url = (await create(headers, size, { 'Upload-Concat': 'partial' })).headers.get('location')!;
      expect((await patch(headers, url, 0, Buffer.alloc(size, 8))).status).toBe(204);
      return url;
    };
    const final = (headers: Record<string, string>, urls: string[]) =>
      fetch(`${server.url}/files`, {
        method: 'POST',
        headers: { ...headers, ...TUS, 'Upload-Concat': `final;${urls.join(' ')}`, 'Upload-Metadata': metadata('joined.bin') },
      });

    it('caps the partial uploads one final may list (CONCAT_MAX_PARTS)', async () => {
      const headers = await owner('concat-cap');
      const a = await partial(headers, 100);
      const refused = await final(headers, Array(300).fill(new URL(a).pathname));
      expect(refused.status).toBe(400);
      expect(await code(refused)).toBe('TOO_MANY_PARTIAL_UPLOADS');
      expect((await final(headers, Array(20).fill(a))).status).toBe(201);
    });

    it('counts every listed use of a partial against the quota', async () => {
      const headers = await owner('concat-quota', { maxBytes: 1000 });
      const a = await partial(headers, 400);
      const refused = await final(headers, [a, a, a]);
      expect(refused.status).toBe(413);
      expect(await code(refused)).toBe('QUOTA_EXCEEDED');
      const accepted = await final(headers, [a, a]);
      expect(accepted.status).toBe(201);
      expect((await waitForFinal(server.url, idOf(accepted.headers.get('location')!), { headers })).size).toBe(800);
      expect(await quota(headers)).toMatchObject({ usedBytes: 800, reservedBytes: 0 });
      // Used again, it counts again: 800 + 400 > 1000.
      const again = await final(headers, [a]);
      expect(again.status).toBe(413);
    });
  });

  describe('unfinished uploads of one owner', () => {
    it('are bounded in number (QUOTA_MAX_UNFINISHED_UPLOADS), without touching another owner', async () => {
      const headers = await owner('many');
      const urls: string[] = [];
      for (let i = 0; i < 5; i++) {
        const response = await create(headers, 10);
        expect(response.status).toBe(201);
        urls.push(response.headers.get('location')!);
      }
      const refused = await create(headers, 10);
      expect(refused.status).toBe(429);
      expect(await code(refused)).toBe('TOO_MANY_UNFINISHED_UPLOADS');
      // Partials count too.
      expect((await create(headers, 10, { 'Upload-Concat': 'partial' })).status).toBe(429);
      expect((await create(await owner('other'), 10)).status).toBe(201);
      // Terminating one frees a place.
      expect((await fetch(urls[0]!, { method: 'DELETE', headers: { ...headers, ...TUS } })).status).toBe(204);
      expect((await create(headers, 10)).status).toBe(201);
    });

    it('are bounded in the bytes they hold (QUOTA_MAX_RESERVED_BYTES)', async () => {
      const headers = await owner('big');
      expect((await create(headers, 60_000)).status).toBe(201);
      const refused = await create(headers, 60_000);
      expect(refused.status).toBe(413);
      expect(await code(refused)).toBe('RESERVATION_EXCEEDED');
      expect(await quota(headers)).toMatchObject({ reservedBytes: 60_000 });
    });
  });
});
