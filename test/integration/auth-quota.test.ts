// Identity, ownership isolation and race-safe quotas, over real HTTP against real Postgres.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { bearer, jwtEnv, token } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';
import { idOf, upload } from '../support/tus.js';

const metadata = (name: string) => `filename ${Buffer.from(name).toString('base64')}`;

describe('identity, ownership and quotas', () => {
  let db: TestDatabase;
  let server: TestServer;
  let alice: Record<string, string>;
  let bob: Record<string, string>;
  let admin: Record<string, string>;

  const create = (headers: Record<string, string>, length: number, name = 'q.bin') =>
    fetch(`${server.url}/files`, {
      method: 'POST',
      headers: { ...headers, 'Tus-Resumable': '1.0.0', 'Upload-Length': String(length), 'Upload-Metadata': metadata(name) },
    });
  const quota = async (headers: Record<string, string>) =>
    (await (await fetch(`${server.url}/api/me/quota`, { headers })).json()) as Record<string, number | null | string>;
  const setQuota = (ownerId: string, body: Record<string, number | null>, headers = admin) =>
    fetch(`${server.url}/api/admin/quotas/${ownerId}`, {
      method: 'PUT',
      headers: { ...headers, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage: 'file', extra: jwtEnv() }));
    alice = await bearer('alice');
    bob = await bearer('bob');
    admin = await bearer('root', { role: 'admin' });
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  describe('tokens', () => {
    it.each([
      ['no token', async () => ({}), 'UNAUTHORIZED'],
      // Expired beyond the 60 s of clock skew tolerated.
      ['an expired token', async () => bearer('alice', { expiresIn: Math.floor(Date.now() / 1000) - 600 }), 'TOKEN_EXPIRED'],
      ['a token with a wrong signature', async () => bearer('alice', { secret: 'x'.repeat(40) }), 'INVALID_TOKEN'],
      ['a token for another audience', async () => bearer('alice', { audience: 'someone-else' }), 'INVALID_TOKEN'],
      ['a token from another issuer', async () => bearer('alice', { issuer: 'https://evil.test' }), 'INVALID_TOKEN'],
      ['a token without a subject', async () => ({ Authorization: `Bearer ${await token(undefined)}` }), 'INVALID_TOKEN'],
      ['a malformed header', async () => ({ Authorization: 'Basic YWxpY2U6c2VjcmV0' }), 'INVALID_TOKEN'],
      ['an unsigned token', async () => ({ Authorization: `Bearer ${unsignedToken('alice')}` }), 'INVALID_TOKEN'],
    ])('refuses %s on the tus endpoint and the API with 401', async (_label, headers, code) => {
      const h = await headers();
      for (const response of [await create(h, 10), await fetch(`${server.url}/api/files`, { headers: h })]) {
        expect(response.status).toBe(401);
        expect(response.headers.get('www-authenticate')).toContain('Bearer');
        expect(((await response.json()) as { error: { code: string } }).error.code).toBe(code);
      }
    });

    it('accepts a valid token', async () => {
      expect((await create(alice, 10)).status).toBe(201);
      expect((await fetch(`${server.url}/api/files`, { headers: alice })).status).toBe(200);
    });
  });

  describe('ownership', () => {
    it('answers every tus and API request on another owner\'s upload exactly like a missing one', async () => {
      const location = (await create(alice, 100)).headers.get('location')!;
      const id = idOf(location);
      const missing = location.replace(id, '0'.repeat(32));
      const tus = (url: string, method: string) =>
        fetch(url, {
          method,
          headers: { ...bob, 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
          ...(method === 'PATCH' ? { body: 'x' } : {}),
        });
      for (const method of ['HEAD', 'PATCH', 'DELETE']) {
        const theirs = await tus(location, method);
        const none = await tus(missing, method);
        expect([method, theirs.status]).toEqual([method, 404]);
        expect(none.status).toBe(404);
        if (method !== 'HEAD') expect(await theirs.json()).toEqual(await none.json());
      }
      for (const path of [`/api/files/${id}`, `/api/files/${id}/content`, `/api/files/${id}/events`]) {
        const theirs = await fetch(`${server.url}${path}`, { headers: bob });
        const none = await fetch(`${server.url}${path.replace(id, '0'.repeat(32))}`, { headers: bob });
        expect(theirs.status).toBe(404);
        expect(await theirs.json()).toEqual(await none.json());
      }
      // Alice's upload is untouched by all that.
      const head = await fetch(location, { method: 'HEAD', headers: { ...alice, 'Tus-Resumable': '1.0.0' } });
      expect(head.status).toBe(200);
      expect(head.headers.get('upload-offset')).toBe('0');
      const list = (await (await fetch(`${server.url}/api/files`, { headers: bob })).json()) as { files: { id: string }[] };
      expect(list.files.map((f) => f.id)).not.toContain(id);
    });

    it('keeps admin endpoints to admins (403 for everybody else)', async () => {
      const responses = await Promise.all([
        setQuota('alice', { maxBytes: 1 }, alice),
        fetch(`${server.url}/api/admin/analytics/queue`, { headers: alice }),
        fetch(`${server.url}/api/admin/duplicates`, { headers: alice }),
        fetch(`${server.url}/api/admin/uploads/cleanup`, { method: 'POST', headers: { ...alice, 'Content-Type': 'application/json' }, body: '{"dryRun":true}' }),
      ]);
      for (const response of responses) {
        expect(response.status).toBe(403);
        expect(((await response.json()) as { error: { code: string } }).error.code).toBe('ADMIN_ONLY');
      }
    });
  });

  describe('quotas', () => {
    it('shows limits, usage and reservations with the names PUT accepts', async () => {
      const owner = await bearer('carol');
      const updated = await setQuota('carol', { maxBytes: 5000, maxFiles: 7, maxFileSize: 4000, monthlyBytes: 9000 });
      expect(updated.status).toBe(200);
      expect(await quota(owner)).toMatchObject({
        ownerId: 'carol',
        maxBytes: 5000,
        maxFiles: 7,
        maxFileSize: 4000,
        monthlyBytes: 9000,
        usedBytes: 0,
        fileCount: 0,
        reservedBytes: 0,
        monthBytes: 0,
      });
      // A subset changes only those; null returns a limit to the default (unlimited here).
      await setQuota('carol', { maxFiles: null });
      expect(await quota(owner)).toMatchObject({ maxBytes: 5000, maxFiles: null });
      const bad = await setQuota('carol', { maxBytes: -1 });
      expect(bad.status).toBe(400);
      const unknown = await fetch(`${server.url}/api/admin/quotas/carol`, {
        method: 'PUT',
        headers: { ...admin, 'Content-Type': 'application/json' },
        body: JSON.stringify({ maxBananas: 3 }),
      });
      expect(unknown.status).toBe(400);
      const audit = await db.sql`select 1 from audit_log where action = 'QUOTA_CHANGED' and owner_id = 'carol'`;
      expect(audit.length).toBeGreaterThanOrEqual(2);
    });

    it('lets exactly the allowed number of 20 racing creations through', async () => {
      const owner = await bearer('racer');
      await setQuota('racer', { maxBytes: 1000 });
      const first = await create(owner, 500);
      expect(first.status).toBe(201);
      const results = await Promise.all(Array.from({ length: 20 }, () => create(owner, 100)));
      const created = results.filter((r) => r.status === 201);
      const refused = results.filter((r) => r.status !== 201);
      expect(created).toHaveLength(5);
      expect(refused.every((r) => r.status === 413)).toBe(true);
      const body = (await refused[0]!.json()) as { error: Record<string, unknown> };
      expect(body.error).toMatchObject({ code: 'QUOTA_EXCEEDED', limit: 1000, requested: 100, available: 0 });
      expect(body.error.reserved).toBe(1000);
      expect(await quota(owner)).toMatchObject({ reservedBytes: 1000, reservedFiles: 6, usedBytes: 0 });
      const rows = await db.sql<{ n: number; total: number }[]>`
        select count(*)::int as n, sum(reserved_bytes)::int as total from uploads where owner_id = 'racer' and status = 'uploading'`;
      expect(rows[0]).toEqual({ n: 6, total: 1000 });

      // Termination gives the bytes back.
      const terminated = await fetch(created[0]!.headers.get('location')!, { method: 'DELETE', headers: { ...owner, 'Tus-Resumable': '1.0.0' } });
      expect(terminated.status).toBe(204);
      expect(await quota(owner)).toMatchObject({ reservedBytes: 900, reservedFiles: 5 });
      expect((await create(owner, 100)).status).toBe(201);
    });

    it('refuses a file over the single-file limit (413), and over the file count or monthly allowance (403)', async () => {
      const owner = await bearer('dave');
      await setQuota('dave', { maxFileSize: 1000, maxFiles: 2, monthlyBytes: 1500 });
      const big = await create(owner, 1001);
      expect(big.status).toBe(413);
      expect(await big.json()).toMatchObject({ error: { code: 'QUOTA_FILE_SIZE_EXCEEDED', limit: 1000, requested: 1001 } });
      expect((await create(owner, 800)).status).toBe(201);
      const monthly = await create(owner, 800);
      expect(monthly.status).toBe(403);
      expect(await monthly.json()).toMatchObject({ error: { code: 'QUOTA_MONTHLY_EXCEEDED', limit: 1500, used: 800, requested: 800 } });
      expect((await create(owner, 100)).status).toBe(201);
      const count = await create(owner, 1);
      expect(count.status).toBe(403);
      expect(await count.json()).toMatchObject({ error: { code: 'QUOTA_FILES_EXCEEDED', limit: 2 } });
    });

    it('turns reservations into usage when files become ready, counts de-duplicated files in full, and never twice', async () => {
      const owner = await bearer('erin');
      const data = randomBytes(3000);
      const first = await upload(data, { endpoint: `${server.url}/files`, filename: 'a.bin', headers: owner });
      const second = await upload(data, { endpoint: `${server.url}/files`, filename: 'b.bin', headers: owner });
      await waitForFinal(server.url, first, { headers: owner });
      expect((await waitForFinal(server.url, second, { headers: owner })).deduplicated).toBe(true);
      expect(await quota(owner)).toMatchObject({ usedBytes: 6000, fileCount: 2, reservedBytes: 0, reservedFiles: 0, monthBytes: 6000 });

      // A processing job that runs again (as after a crash) changes nothing.
      await db.sql`update uploads set status = 'processing' where id = ${first}`;
      await db.sql`select graphile_worker.add_job('process_upload', json_build_object('uploadId', ${first}::text), job_key := ${`process:${first}`})`;
      await waitForFinal(server.url, first, { headers: owner });
      expect(await quota(owner)).toMatchObject({ usedBytes: 6000, fileCount: 2, reservedBytes: 0 });
      const audits = await db.sql`select 1 from audit_log where upload_id = ${first} and action = 'UPLOAD_READY'`;
      expect(audits).toHaveLength(1);
    });

    it('gives a rejected file\'s reservation back', async () => {
      const owner = await bearer('fay');
      const id = await upload(Buffer.from('not a sequence at all'), { endpoint: `${server.url}/files`, filename: 'x.fseq', headers: owner });
      expect((await waitForFinal(server.url, id, { headers: owner })).status).toBe('rejected');
      expect(await quota(owner)).toMatchObject({ usedBytes: 0, reservedBytes: 0, reservedFiles: 0, monthBytes: 0 });
    });

    it('reserves a deferred length when it is declared, and refuses one over quota', async () => {
      const owner = await bearer('gil');
      await setQuota('gil', { maxBytes: 100 });
      const response = await fetch(`${server.url}/files`, {
        method: 'POST',
        headers: { ...owner, 'Tus-Resumable': '1.0.0', 'Upload-Defer-Length': '1', 'Upload-Metadata': metadata('later.bin') },
      });
      expect(response.status).toBe(201);
      const location = response.headers.get('location')!;
      const patch = (length: number) =>
        fetch(location, {
          method: 'PATCH',
          headers: {
            ...owner,
            'Tus-Resumable': '1.0.0',
            'Upload-Offset': '0',
            'Upload-Length': String(length),
            'Content-Type': 'application/offset+octet-stream',
          },
          body: 'abc',
        });
      const tooMuch = await patch(500);
      expect(tooMuch.status).toBe(413);
      expect(((await tooMuch.json()) as { error: { code: string } }).error.code).toBe('QUOTA_EXCEEDED');
      const ok = await patch(50);
      expect(ok.status).toBe(204);
      expect(await quota(owner)).toMatchObject({ reservedBytes: 50 });
    });
  });
});

describe('tokens from a JWKS endpoint (RS256)', () => {
  let db: TestDatabase;
  let server: TestServer;
  let jwks: http.Server;
  let privateKey: CryptoKey;

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    privateKey = pair.privateKey as CryptoKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    jwks = http.createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const address = jwks.address() as { port: number };
    db = await createTestDatabase();
    server = await startServer(
      await serverEnv({
        databaseUrl: db.url,
        storage: 'file',
        extra: { AUTH_MODE: 'jwt', AUTH_JWKS_URL: `http://127.0.0.1:${address.port}/jwks.json` },
      }),
    );
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
    jwks?.close();
  });

  it('accepts tokens signed by a published key and refuses HS256 tokens', async () => {
    const rs = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject('jwks-user')
      .setExpirationTime('5m')
      .sign(privateKey);
    const ok = await fetch(`${server.url}/api/me/quota`, { headers: { Authorization: `Bearer ${rs}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ ownerId: 'jwks-user' });
    const hs = await fetch(`${server.url}/api/me/quota`, { headers: await bearer('jwks-user') });
    expect(hs.status).toBe(401);
  });
});

function unsignedToken(sub: string): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${encode({ alg: 'none' })}.${encode({ sub, exp: Math.floor(Date.now() / 1000) + 600 })}.`;
}
