// A tier move killed between the copy and the record update: the server process is SIGKILLed
// while its record update waits on a row lock this test holds on the blob, so the kill lands
// exactly there (the copy is done, nothing recorded). The object stays where it can be read, and
// the next sweep (of a new process) finishes the move. On S3 and on disk with an archive bucket.
import { randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { getFile, waitForFinal } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { s3Client } from '../support/moto.js';
import { waitFor } from '../support/ports.js';
import { serverEnv, spawnServer, type ChildServer } from '../support/server.js';
import { sha256, upload } from '../support/tus.js';

type Setup = 's3' | 'file with an archive bucket';

describe.each<Setup>(['s3', 'file with an archive bucket'])('a tier move killed after its copy (%s)', (setup) => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let server: ChildServer | undefined;
  const s3 = () => s3Client(inject('s3Endpoint'));
  const archiveBucket = `tv-archive-${randomBytes(4).toString('hex')}`;
  const bucket = () => (setup === 's3' ? env.S3_BUCKET! : archiveBucket);

  beforeAll(async () => {
    db = await createTestDatabase();
    const tiers: Record<string, string> =
      setup === 's3'
        ? { TIER_INFREQUENT_AFTER: '30d' }
        : {
            TIER_ARCHIVE_AFTER: '30d',
            ARCHIVE_S3_BUCKET: archiveBucket,
            ARCHIVE_S3_ENDPOINT: inject('s3Endpoint'),
            ARCHIVE_S3_ACCESS_KEY_ID: 'test',
            ARCHIVE_S3_SECRET_ACCESS_KEY: 'test',
            ARCHIVE_S3_FORCE_PATH_STYLE: 'true',
          };
    if (setup !== 's3') await s3().send(new CreateBucketCommand({ Bucket: archiveBucket }));
    env = await serverEnv({ databaseUrl: db.url, storage: setup === 's3' ? 's3' : 'file', extra: jwtEnv(tiers) });
  });
  afterAll(async () => {
    await server?.kill('SIGKILL');
    await db?.drop();
  });

  const sweep = (url: string, admin: Record<string, string>) =>
    fetch(`${url}/api/admin/uploads/cleanup`, {
      method: 'POST',
      headers: { ...admin, 'Content-Type': 'application/json' },
      body: JSON.stringify({ dryRun: false }),
    });
  const head = (key: string) =>
    s3()
      .send(new HeadObjectCommand({ Bucket: bucket(), Key: key }))
      .catch((error: { name?: string }) => (error.name === 'NotFound' ? null : Promise.reject(error)));

  it('leaves the object readable, and the next sweep records the move', async () => {
    server = await spawnServer(env);
    const alice = await bearer('alice');
    const admin = await bearer('operator', { role: 'admin' });
    const data = randomBytes(8000);
    const sha = sha256(data);
    const id = await upload(data, { endpoint: `${server.url}/files`, filename: 'cold.bin', headers: alice });
    expect((await waitForFinal(server.url, id, { headers: alice })).status).toBe('ready');
    const key = (await db.sql<{ storage_key: string }[]>`select storage_key from blobs where sha256 = ${sha}`)[0]!.storage_key;
    await db.sql`update uploads set last_accessed_at = now() - interval '40 days', ready_at = now() - interval '40 days' where id = ${id}`;
    const target = setup === 's3' ? 'STANDARD_IA' : 'GLACIER';

    // Hold the blob's row: the sweep copies, then waits for it in its record update.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const lockTaken = new Promise<void>((resolve) => (locked = resolve));
    const holding = db.sql.begin(async (tx) => {
      await tx`select sha256 from blobs where sha256 = ${sha} for update`;
      locked();
      await held;
    });
    await lockTaken;
    const killedSweep = sweep(server.url, admin).catch((error: unknown) => error);
    await waitFor(async () => (await head(key))?.StorageClass === target, { what: 'the copy' });
    await waitFor(
      async () =>
        (
          await db.sql`select 1 from pg_stat_activity
                       where datname = ${db.name} and wait_event_type = 'Lock' and query ilike 'update "blobs"%'`
        ).length === 1,
      { what: 'the record update to wait for the lock' },
    );
    await server.kill('SIGKILL');
    release();
    await holding;
    expect(await killedSweep).toBeInstanceOf(Error);

    // Nothing recorded; the bytes are in the new class.
    const [blob] = await db.sql<{ storage_tier: string }[]>`select storage_tier from blobs where sha256 = ${sha}`;
    expect(blob!.storage_tier).toBe('standard');
    server = await spawnServer(env);
    if (setup === 's3') {
      // STANDARD_IA reads like STANDARD: the file downloads meanwhile.
      const meanwhile = await fetch(`${server.url}/api/files/${id}/content`, { headers: alice });
      expect(meanwhile.status).toBe(200);
      expect(Buffer.from(await meanwhile.arrayBuffer()).equals(data)).toBe(true);
      // That download made it warm again; cold once more for the sweep.
      await db.sql`update uploads set last_accessed_at = now() - interval '40 days' where id = ${id}`;
    } else {
      // The local file went after the copy was verified; the copy is the one there is.
      expect(await access(path.join(env.DATA_DIR!, 'files', key)).then(() => true, () => false)).toBe(false);
      const copy = await s3().send(new HeadObjectCommand({ Bucket: archiveBucket, Key: key, ChecksumMode: 'ENABLED' }));
      expect(copy.ChecksumSHA256).toBe(Buffer.from(sha, 'hex').toString('base64'));
    }

    const finished = await sweep(server.url, admin);
    expect(finished.status).toBe(200);
    const { tierMoves } = (await finished.json()) as { tierMoves: { moves: unknown[] } };
    expect(tierMoves.moves).toEqual([{ sha256: sha, bytes: 8000, from: 'standard', to: setup === 's3' ? 'infrequent' : 'archive' }]);
    expect((await getFile(server.url, id, alice)).storageTier).toBe(setup === 's3' ? 'infrequent' : 'archive');
    expect((await head(key))?.StorageClass).toBe(target);

    if (setup === 's3') {
      const served = await fetch(`${server.url}/api/files/${id}/content`, { headers: alice });
      expect(Buffer.from(await served.arrayBuffer()).equals(data)).toBe(true);
    } else {
      // Archived now: a download starts the restore, and the bytes come back from the bucket.
      expect((await fetch(`${server.url}/api/files/${id}/content`, { headers: alice })).status).toBe(409);
      await waitFor(async () => (await getFile(server!.url, id, alice)).restoredUntil, { what: 'the restore' });
      const served = await fetch(`${server.url}/api/files/${id}/content`, { headers: alice });
      expect(served.status).toBe(200);
      expect(Buffer.from(await served.arrayBuffer()).equals(data)).toBe(true);
      const body = await s3().send(new GetObjectCommand({ Bucket: archiveBucket, Key: key }));
      expect(Buffer.from(await body.Body!.transformToByteArray()).equals(data)).toBe(true);
    }
  });
});
