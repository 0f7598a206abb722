// The lifecycle sweep against real Postgres and both stores: a dry run reports exactly what the
// real run then does; expired uploads answer 410 and give their reservation back; rejected files
// are purged after their retention; unreferenced blobs and orphan objects are removed; every
// removal is audited.
import { randomBytes } from 'node:crypto';
import { utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildPng } from '../support/fixture-builders.js';
import { s3Client } from '../support/moto.js';
import { serverEnv, startServer, type StorageKind, type TestServer } from '../support/server.js';
import { idOf, upload } from '../support/tus.js';

describe.each<StorageKind>(['file', 's3'])('lifecycle with %s storage', (storage) => {
  let db: TestDatabase;
  let server: TestServer;
  let user: Record<string, string>;
  let admin: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase();
    // Objects written straight into S3 cannot be back-dated, so no grace period in this test.
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage, extra: jwtEnv({ ORPHAN_GRACE: '0s' }) }));
    user = await bearer('keeper');
    admin = await bearer('operator', { role: 'admin' });
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  const cleanup = async (dryRun: boolean, headers = admin) =>
    fetch(`${server.url}/api/admin/uploads/cleanup`, {
      method: 'POST',
      headers: { ...headers, 'Content-Type': 'application/json' },
      body: JSON.stringify({ dryRun }),
    });

  async function putOrphan(key: string, bytes: Buffer): Promise<void> {
    if (storage === 'file') {
      const file = path.join(server.env.DATA_DIR!, 'files', key);
      await writeFile(file, bytes);
      const old = new Date(Date.now() - 2 * 3600_000);
      await utimes(file, old, old);
    } else {
      await s3Client(inject('s3Endpoint')).send(new PutObjectCommand({ Bucket: server.env.S3_BUCKET, Key: key, Body: bytes }));
    }
  }

  it('is for admins only', async () => {
    const response = await cleanup(true, user);
    expect(response.status).toBe(403);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('ADMIN_ONLY');
  });

  it('reports in a dry run exactly what the real run does, then does it', async () => {
    // 1. An upload abandoned half-way, whose expiry has passed.
    const create = await fetch(`${server.url}/files`, {
      method: 'POST',
      headers: { ...user, 'Tus-Resumable': '1.0.0', 'Upload-Length': '1000', 'Upload-Metadata': `filename ${Buffer.from('abandoned.bin').toString('base64')}` },
    });
    const abandoned = idOf(create.headers.get('location')!);
    await fetch(create.headers.get('location')!, {
      method: 'PATCH',
      headers: { ...user, 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      body: randomBytes(400),
    });
    await db.sql`update uploads set expires_at = now() - interval '1 minute' where id = ${abandoned}`;
    // 2. A file rejected eight days ago.
    const rejectedId = await upload(buildPng(), { endpoint: `${server.url}/files`, filename: 'fake.fseq', headers: user });
    expect((await waitForFinal(server.url, rejectedId, { headers: user })).status).toBe('rejected');
    await db.sql`update uploads set finalized_at = now() - interval '8 days' where id = ${rejectedId}`;
    // 3. A fresh rejection stays (inside its retention), and a ready file stays.
    const recentReject = await upload(buildPng(), { endpoint: `${server.url}/files`, filename: 'recent.fseq', headers: user });
    const kept = await upload(randomBytes(100), { endpoint: `${server.url}/files`, filename: 'kept.bin', headers: user });
    await waitForFinal(server.url, recentReject, { headers: user });
    expect((await waitForFinal(server.url, kept, { headers: user })).status).toBe('ready');
    // 4. An object no record knows, and a blob no upload references.
    const orphanKey = 'a'.repeat(32);
    await putOrphan(orphanKey, randomBytes(123));
    const strayKey = 'b'.repeat(32);
    await putOrphan(strayKey, randomBytes(77));
    const straySha = 'c'.repeat(64);
    await db.sql`insert into blobs (sha256, md5, size, storage_key, ref_count, kind) values (${straySha}, ${'d'.repeat(32)}, 77, ${strayKey}, 0, 'other')`;

    const quotaBefore = (await (await fetch(`${server.url}/api/me/quota`, { headers: user })).json()) as { reservedBytes: number };
    expect(quotaBefore.reservedBytes).toBe(1000);

    const dry = await cleanup(true);
    expect(dry.status).toBe(200);
    type Category = { count: number; bytes: number; ids: string[] };
    const plan = (await dry.json()) as Record<'expired' | 'rejected' | 'quarantined' | 'blobs' | 'orphans', Category> & { dryRun: boolean };
    expect(plan.dryRun).toBe(true);
    expect(plan.expired).toEqual({ count: 1, bytes: 1000, ids: [abandoned] });
    expect(plan.rejected.ids).toEqual([rejectedId]);
    expect(plan.quarantined.count).toBe(0);
    expect(plan.blobs.ids).toEqual([straySha]);
    expect(plan.orphans.ids).toEqual([orphanKey]);
    // Nothing happened yet.
    const [stillThere] = await db.sql<{ status: string }[]>`select status from uploads where id = ${abandoned}`;
    expect(stillThere!.status).toBe('uploading');

    const real = await cleanup(false);
    const done = (await real.json()) as typeof plan;
    expect(done.dryRun).toBe(false);
    for (const key of ['expired', 'rejected', 'quarantined', 'blobs', 'orphans'] as const) expect(done[key]).toEqual(plan[key]);

    // The effects.
    const head = await fetch(create.headers.get('location')!, { method: 'HEAD', headers: { ...user, 'Tus-Resumable': '1.0.0' } });
    expect(head.status).toBe(410);
    const expiredRecord = await (await fetch(`${server.url}/api/files/${abandoned}`, { headers: user })).json();
    expect(expiredRecord).toMatchObject({ status: 'expired' });
    const quotaAfter = (await (await fetch(`${server.url}/api/me/quota`, { headers: user })).json()) as { reservedBytes: number; reservedFiles: number };
    expect(quotaAfter).toMatchObject({ reservedBytes: 0, reservedFiles: 0 });
    expect((await fetch(`${server.url}/api/files/${rejectedId}`, { headers: user })).status).toBe(404);
    expect((await fetch(`${server.url}/api/files/${recentReject}`, { headers: user })).status).toBe(200);
    expect((await fetch(`${server.url}/api/files/${kept}/content`, { headers: user })).status).toBe(200);
    expect(await db.sql`select 1 from blobs where sha256 = ${straySha}`).toHaveLength(0);
    const audit = await db.sql<{ action: string }[]>`select action from audit_log where actor = 'lifecycle' order by id`;
    expect(audit.map((a) => a.action).sort()).toEqual(['FILE_PURGED', 'ORPHAN_REMOVED', 'UPLOAD_EXPIRED']);

    // A second run finds nothing left to do.
    const again = (await (await cleanup(false)).json()) as typeof plan;
    for (const key of ['expired', 'rejected', 'quarantined', 'blobs', 'orphans'] as const) expect(again[key].count).toBe(0);
  });
});
