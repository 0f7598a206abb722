// Security issue #18, "Low and info" items outside the tus endpoint, each closed by a test:
// de-duplication disclosed across owners, bidi / zero-width characters in filenames, admin
// analytics ranges, suffix ranges longer than the file, a download link without a body, and which
// tokens are accepted (role vs roles, iat in the future, clock tolerance).
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal, type FileRecord } from '../support/api.js';
import { bearer, JWT_SECRET, jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';
import { upload } from '../support/tus.js';

describe('security: low and info items', () => {
  let db: TestDatabase;
  let server: TestServer;
  let alice: Record<string, string>;
  let bob: Record<string, string>;
  let admin: Record<string, string>;

  const send = async (data: Buffer, filename: string, headers: Record<string, string>): Promise<FileRecord> => {
    const id = await upload(data, { endpoint: `${server.url}/files`, filename, headers });
    return waitForFinal(server.url, id, { headers });
  };
  const api = (path: string, headers: Record<string, string>, init: RequestInit = {}) =>
    fetch(`${server.url}/api${path}`, { ...init, headers: { ...headers, ...(init.headers as Record<string, string>) } });
  const errorCode = async (response: Response) => ((await response.json()) as { error: { code: string } }).error.code;

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage: 'file', extra: jwtEnv() }));
    alice = await bearer('sec-alice');
    bob = await bearer('sec-bob');
    admin = await bearer('sec-root', { role: 'admin' });
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  describe('de-duplication', () => {
    it("reports deduplicated only for the owner's own earlier copy, never another owner's", async () => {
      const data = randomBytes(3000);
      const bobs = await send(data, 'bob.bin', bob);
      expect(bobs).toMatchObject({ status: 'ready', deduplicated: false });
      // Alice's bytes are shared with Bob's internally, but she must not learn that.
      const alices = await send(data, 'alice.bin', alice);
      expect(alices).toMatchObject({ status: 'ready', deduplicated: false, sha256: bobs.sha256 });
      const [blob] = await db.sql<{ ref_count: number }[]>`select ref_count from blobs where sha256 = ${bobs.sha256}`;
      expect(Number(blob!.ref_count)).toBe(2);
      // Her own second copy is a duplicate of her first: that she may know.
      const again = await send(data, 'alice-again.bin', alice);
      expect(again.deduplicated).toBe(true);
      // The list says the same as the record.
      const list = (await (await api('/files?limit=200', alice)).json()) as { files: FileRecord[] };
      expect(Object.fromEntries(list.files.filter((f) => f.sha256 === bobs.sha256).map((f) => [f.id, f.deduplicated]))).toEqual({
        [alices.id]: false,
        [again.id]: true,
      });
    });

    it('does not count a copy the owner deleted as an earlier copy', async () => {
      const data = randomBytes(2000);
      await send(data, 'keeper.bin', bob);
      const first = await send(data, 'first.bin', alice);
      expect((await api(`/files/${first.id}`, alice, { method: 'DELETE' })).status).toBe(204);
      expect((await send(data, 'second.bin', alice)).deduplicated).toBe(false);
    });

    it('reports exactly one original per owner when identical uploads finish at once', async () => {
      const data = randomBytes(64 * 1024);
      const owners = [alice, bob];
      const ids = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          upload(data, { endpoint: `${server.url}/files`, filename: `race-${i}.bin`, headers: owners[i % 2]! }).then((id) => ({ id, owner: i % 2 })),
        ),
      );
      const records = await Promise.all(ids.map(({ id, owner }) => waitForFinal(server.url, id, { headers: owners[owner]! })));
      expect(records.every((r) => r.status === 'ready')).toBe(true);
      for (const owner of [0, 1]) {
        const mine = records.filter((_, i) => ids[i]!.owner === owner);
        expect(mine.filter((r) => !r.deduplicated), `owner ${owner}`).toHaveLength(1);
      }
    });
  });

  describe('filenames', () => {
    const create = (filename: string) =>
      fetch(`${server.url}/files`, {
        method: 'POST',
        headers: { ...alice, 'Tus-Resumable': '1.0.0', 'Upload-Length': '10', 'Upload-Metadata': `filename ${Buffer.from(filename).toString('base64')}` },
      });

    it.each([
      ['a right-to-left override', 'invoice\u202Etxt.exe'],
      ['a left-to-right isolate', 'song\u2066.mp3'],
      ['a zero-width space', 'show\u200B.fseq'],
      ['a zero-width joiner', 'a\u200Db.png'],
      ['a byte-order mark', '\uFEFFshow.fseq'],
      ['a word joiner', 'show\u2060.fseq'],
    ])('refuses a name with %s with 400 INVALID_FILENAME and keeps no record', async (_label, filename) => {
      const before = await db.sql<{ n: number }[]>`select count(*)::int as n from uploads`;
      const response = await create(filename);
      expect(response.status).toBe(400);
      expect(await errorCode(response)).toBe('INVALID_FILENAME');
      const after = await db.sql<{ n: number }[]>`select count(*)::int as n from uploads`;
      expect(after[0]!.n).toBe(before[0]!.n);
    });

    it('still accepts names in right-to-left scripts, joiners inside Persian, Indic and emoji sequences (control)', async () => {
      for (const filename of ['שיר.mp3', 'أغنية.mp3', 'می\u200Cخواهم.mp3', 'क्\u200Dष.mp3', '👨\u200D👩\u200D👧 family.png', '❤\uFE0F\u200D🔥.png']) {
        expect((await create(filename)).status, filename).toBe(201);
      }
    });
  });

  describe('admin analytics ranges', () => {
    const analytics = (query: string, headers = admin) => api(`/admin/analytics/uploads?${query}`, headers);

    it.each([
      ['start=0000-01-01', 'start'],
      ['end=0000-01-01T00:00:00Z', 'end'],
      ['start=1969-12-31', 'start'],
      ['start=2024-02-30', 'start'],
      ['start=2024-13-01', 'start'],
      ['start=yesterday', 'start'],
      ['start=2024-01-01&end=2030-01-01', 'end'],
      ['start=2025-06-01&end=2025-01-01', 'start'],
    ])('refuses %s with 400 naming %s', async (query, parameter) => {
      const response = await analytics(query);
      expect(response.status, query).toBe(400);
      const body = (await response.json()) as { error: { code: string; message: string; parameter?: string } };
      expect(['INVALID_RANGE', 'VALIDATION_ERROR']).toContain(body.error.code);
      expect(body.error.parameter ?? body.error.message).toContain(parameter);
    });

    it.each([
      ['the default window', ''],
      ['a whole year by dates', 'start=2025-01-01&end=2026-01-01'],
      ['an empty window', 'start=2025-01-01T00:00:00Z&end=2025-01-01T00:00:00Z'],
      ['times with offsets', 'start=2025-03-01T10:00:00%2B02:00&end=2025-03-02T00:00:00-05:00'],
    ])('answers %s', async (_label, query) => {
      const response = await analytics(query);
      expect(response.status, await response.clone().text()).toBe(200);
    });

    it('applies the same rules to the failures and top-uploaders reports', async () => {
      for (const path of ['/admin/analytics/failures', '/admin/analytics/top-uploaders']) {
        const response = await api(`${path}?start=0000-01-01`, admin);
        expect(response.status, path).toBe(400);
        expect(['INVALID_RANGE', 'VALIDATION_ERROR']).toContain(await errorCode(response));
      }
    });
  });

  describe('downloads', () => {
    let file: FileRecord;
    let data: Buffer;
    beforeAll(async () => {
      data = randomBytes(100_000);
      file = await send(data, 'suffix.bin', alice);
    });
    const content = (range: string) => api(`/files/${file.id}/content`, alice, { headers: { Range: range } });

    it('serves a suffix range longer than the file as the whole file (206, RFC 9110)', async () => {
      const response = await content('bytes=-200000');
      expect(response.status).toBe(206);
      expect(response.headers.get('content-range')).toBe('bytes 0-99999/100000');
      expect(response.headers.get('content-length')).toBe('100000');
      expect(Buffer.from(await response.arrayBuffer()).equals(data)).toBe(true);
    });

    it.each([
      ['bytes=-100000', 0, 99_999],
      ['bytes=-99999999999999999999', 0, 99_999],
      ['bytes=-10', 99_990, 99_999],
      ['bytes=99990-200000', 99_990, 99_999],
    ])('serves %s as 206', async (range, start, end) => {
      const response = await content(range);
      expect(response.status).toBe(206);
      expect(response.headers.get('content-range')).toBe(`bytes ${start}-${end}/100000`);
      expect(Buffer.from(await response.arrayBuffer()).equals(data.subarray(start, end + 1))).toBe(true);
    });

    it.each(['bytes=500000-', 'bytes=100000-', 'bytes=-0'])('still answers %s with 416', async (range) => {
      const response = await content(range);
      expect(response.status).toBe(416);
      expect(response.headers.get('content-range')).toBe('bytes */100000');
      expect(await errorCode(response)).toBe('RANGE_NOT_SATISFIABLE');
    });

    it.each<[string, RequestInit]>([
      ['no body and no Content-Type', {}],
      ['Content-Type: application/json and an empty body', { headers: { 'Content-Type': 'application/json' }, body: '' }],
      ['Content-Type: application/json; charset=utf-8 and an empty body', { headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: '' }],
      ['an empty JSON object', { headers: { 'Content-Type': 'application/json' }, body: '{}' }],
    ])('hands out a download link for a request with %s (the body is optional)', async (_label, init) => {
      const before = Math.floor(Date.now() / 1000);
      const response = await api(`/files/${file.id}/download-url`, alice, { method: 'POST', ...init });
      expect(response.status, await response.clone().text()).toBe(200);
      const link = (await response.json()) as { url: string; expiresAt: string };
      // The default lifetime, 300 s.
      const expires = Date.parse(link.expiresAt) / 1000;
      expect(expires).toBeGreaterThanOrEqual(before + 299);
      expect(expires).toBeLessThanOrEqual(before + 302);
      expect((await fetch(`${server.url}${link.url}`)).status).toBe(200);
    });

    it.each<[string, RequestInit]>([
      ['an expiresIn out of range', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ expiresIn: 1 }) }],
      ['an expiresIn that is not a number', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ expiresIn: 'soon' }) }],
      ['malformed JSON', { headers: { 'Content-Type': 'application/json' }, body: '{"expiresIn":' }],
    ])('still validates a body: refuses %s with 400', async (_label, init) => {
      const response = await api(`/files/${file.id}/download-url`, alice, { method: 'POST', ...init });
      expect(response.status).toBe(400);
    });
  });

  describe('tokens', () => {
    const now = () => Math.floor(Date.now() / 1000);
    const sign = async (claims: Record<string, unknown>, times: { iat?: number; nbf?: number; exp?: number } = {}) => {
      const jwt = new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('sec-carol')
        .setIssuer('https://issuer.test')
        .setAudience('tusvault')
        .setExpirationTime(times.exp ?? now() + 600);
      if (!('iat' in claims)) jwt.setIssuedAt(times.iat ?? now());
      if (times.nbf !== undefined) jwt.setNotBefore(times.nbf);
      return { Authorization: `Bearer ${await jwt.sign(new TextEncoder().encode(JWT_SECRET))}` };
    };
    const quota = (headers: Record<string, string>) => api('/me/quota', headers);
    const adminCall = (headers: Record<string, string>) => api('/admin/analytics/queue', headers);

    it('grants admin for the claim role: "admin" only, not for roles: ["admin"]', async () => {
      expect((await adminCall(await sign({ role: 'admin' }))).status).toBe(200);
      for (const claims of [{ roles: ['admin'] }, { roles: 'admin' }, { role: ['admin'] }, { role: 'Admin' }, { scope: 'admin' }]) {
        const headers = await sign(claims);
        expect((await adminCall(headers)).status, JSON.stringify(claims)).toBe(403);
        // ...while the token itself is fine for the owner's own API.
        expect((await quota(headers)).status).toBe(200);
      }
    });

    it('refuses a token issued in the future (beyond 60 s of clock skew) with 401 TOKEN_NOT_YET_VALID', async () => {
      const response = await quota(await sign({}, { iat: now() + 3600, exp: now() + 7200 }));
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('Bearer');
      expect(await errorCode(response)).toBe('TOKEN_NOT_YET_VALID');
      // On the tus endpoint too.
      const tus = await fetch(`${server.url}/files`, {
        method: 'POST',
        headers: { ...(await sign({}, { iat: now() + 3600, exp: now() + 7200 })), 'Tus-Resumable': '1.0.0', 'Upload-Length': '1' },
      });
      expect(tus.status).toBe(401);
      expect(await errorCode(tus)).toBe('TOKEN_NOT_YET_VALID');
    });

    it('refuses a token not valid before a future time (nbf) the same way', async () => {
      const response = await quota(await sign({}, { nbf: now() + 3600 }));
      expect(response.status).toBe(401);
      expect(await errorCode(response)).toBe('TOKEN_NOT_YET_VALID');
    });

    it('tolerates 60 s of clock skew on iat, nbf and exp, and no more', async () => {
      expect((await quota(await sign({}, { iat: now() + 30 }))).status).toBe(200);
      expect((await quota(await sign({}, { nbf: now() + 30 }))).status).toBe(200);
      expect((await quota(await sign({}, { iat: now() - 600, exp: now() - 30 }))).status).toBe(200);
      const expired = await quota(await sign({}, { iat: now() - 600, exp: now() - 120 }));
      expect(expired.status).toBe(401);
      expect(await errorCode(expired)).toBe('TOKEN_EXPIRED');
      expect((await quota(await sign({}, { iat: now() + 120 }))).status).toBe(401);
    });

    it('refuses a token whose iat is not a number', async () => {
      const response = await quota(await sign({ iat: 'yesterday' }));
      expect(response.status).toBe(401);
      expect(await errorCode(response)).toBe('INVALID_TOKEN');
    });
  });
});
