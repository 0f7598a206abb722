// Storage tiers against moto (the real S3 API: it keeps storage classes and implements restore;
// a restore there is complete by the first HeadObject after it, where AWS takes hours) and real
// Postgres. Time cannot pass in a test, so "not accessed for 40 days" is written into the records.
import { randomBytes } from 'node:crypto';
import { CopyObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { getFile, runCleanup, waitForFinal } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { s3Client } from '../support/moto.js';
import { waitFor } from '../support/ports.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';
import { readEvents, type SseEvent } from '../support/sse.js';
import { sha256, upload } from '../support/tus.js';

interface TierReport {
  count: number;
  bytes: number;
  ids: string[];
  moves: Array<{ sha256: string; bytes: number; from: string; to: string }>;
}

describe('storage tiers (S3)', () => {
  let db: TestDatabase;
  let server: TestServer;
  let alice: Record<string, string>;
  let bob: Record<string, string>;
  let admin: Record<string, string>;
  const s3 = () => s3Client(inject('s3Endpoint'));

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startServer(
      await serverEnv({
        databaseUrl: db.url,
        storage: 's3',
        extra: jwtEnv({ TIER_INFREQUENT_AFTER: '30d', TIER_ARCHIVE_AFTER: '90d', TIER_RESTORE_DAYS: '2' }),
      }),
    );
    alice = await bearer('alice');
    bob = await bearer('bob');
    admin = await bearer('operator', { role: 'admin' });
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  const sweep = async (dryRun: boolean): Promise<TierReport> =>
    (await runCleanup<{ tierMoves: TierReport }>(server.url, admin, dryRun)).tierMoves;
  const storageClass = async (key: string) =>
    (await s3().send(new HeadObjectCommand({ Bucket: server.env.S3_BUCKET, Key: key }))).StorageClass ?? 'STANDARD';
  const keyOf = async (sha: string) => (await db.sql<{ storage_key: string }[]>`select storage_key from blobs where sha256 = ${sha}`)[0]!.storage_key;
  /** Makes every file of this content look last downloaded `days` ago. */
  const idleFor = async (sha: string, days: number) =>
    db.sql`update uploads set last_accessed_at = now() - ${`${days} days`}::interval, ready_at = now() - ${`${days} days`}::interval
           where blob_sha256 = ${sha}`;
  const download = (id: string, headers: Record<string, string>) => fetch(`${server.url}/api/files/${id}/content`, { headers });
  const ready = async (data: Buffer, headers: Record<string, string>, filename = 'sequence.bin') => {
    const id = await upload(data, { endpoint: `${server.url}/files`, filename, headers });
    expect((await waitForFinal(server.url, id, { headers })).status).toBe('ready');
    return id;
  };

  it('moves a cold shared blob once to infrequent, then to archive; the dry run lists exactly those moves', async () => {
    const data = randomBytes(3000);
    const sha = sha256(data);
    const aliceId = await ready(data, alice);
    const bobId = await ready(data, bob);
    const fresh = await ready(randomBytes(2000), alice, 'fresh.bin');
    const quotaBefore = await (await fetch(`${server.url}/api/me/quota`, { headers: alice })).json();
    expect((await getFile(server.url, aliceId, alice)).storageTier).toBe('standard');

    await idleFor(sha, 40);
    const planned = await sweep(true);
    expect(planned.moves).toEqual([{ sha256: sha, bytes: 3000, from: 'standard', to: 'infrequent' }]);
    expect(await storageClass(await keyOf(sha))).toBe('STANDARD');
    expect(await sweep(false)).toEqual(planned);
    expect(await storageClass(await keyOf(sha))).toBe('STANDARD_IA');
    for (const [id, who] of [[aliceId, alice], [bobId, bob]] as const) {
      const record = await getFile(server.url, id, who);
      expect(record).toMatchObject({ status: 'ready', storageTier: 'infrequent', archivedAt: null });
    }
    expect((await getFile(server.url, fresh, alice)).storageTier).toBe('standard');
    expect((await sweep(false)).moves).toEqual([]);

    await idleFor(sha, 100);
    const toArchive = await sweep(true);
    expect(toArchive.moves).toEqual([{ sha256: sha, bytes: 3000, from: 'infrequent', to: 'archive' }]);
    expect(await sweep(false)).toEqual(toArchive);
    expect(await storageClass(await keyOf(sha))).toBe('GLACIER');
    const archived = await getFile(server.url, bobId, bob);
    expect(archived).toMatchObject({ status: 'ready', storageTier: 'archive', restoredUntil: null });
    expect(archived.archivedAt).toEqual(expect.any(String));
    // Quota counts bytes whatever the tier.
    expect(await (await fetch(`${server.url}/api/me/quota`, { headers: alice })).json()).toEqual(quotaBefore);
    // One object of 3000 bytes in archive, used by two files; the fresh file is in standard.
    // Costs at the default prices (USD per GiB-month); de-duplication saves the second 3000 bytes.
    const analytics = await fetch(`${server.url}/api/admin/analytics/tiers`, { headers: admin });
    const cost = (bytes: number, price: number) => Math.round((bytes / 2 ** 30) * price * 1e6) / 1e6;
    expect(await analytics.json()).toEqual({
      tiers: [
        { tier: 'standard', objects: 1, bytes: 2000, files: 1, pricePerGibMonth: 0.023, monthlyCost: cost(2000, 0.023) },
        { tier: 'infrequent', objects: 0, bytes: 0, files: 0, pricePerGibMonth: 0.0125, monthlyCost: 0 },
        { tier: 'archive', objects: 1, bytes: 3000, files: 2, pricePerGibMonth: 0.0036, monthlyCost: cost(3000, 0.0036) },
      ],
      monthlyCost: cost(2000, 0.023) + cost(3000, 0.0036),
      candidates: { count: 0, bytes: 0, moves: [] },
      deduplication: { savedBytes: 3000, savedMonthlyCost: cost(3000, 0.0036) },
    });
  });

  it('downloads an infrequent-access file normally and stamps its last access at most hourly', async () => {
    const data = randomBytes(1500);
    const id = await ready(data, alice);
    await idleFor(sha256(data), 40);
    await sweep(false);
    const before = (await getFile(server.url, id, alice)).lastAccessedAt as string;
    expect(new Date(before).getTime()).toBeLessThan(Date.now() - 39 * 86_400_000);

    const response = await download(id, alice);
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(data)).toBe(true);
    const stamped = (await getFile(server.url, id, alice)).lastAccessedAt as string;
    expect(new Date(stamped).getTime()).toBeGreaterThan(Date.now() - 60_000);
    await (await download(id, alice)).arrayBuffer();
    expect((await getFile(server.url, id, alice)).lastAccessedAt).toBe(stamped);
  });

  it('answers 409 FILE_ARCHIVED with Retry-After for an archived file, restores it, then serves the same bytes', async () => {
    const data = randomBytes(4096);
    const sha = sha256(data);
    const id = await ready(data, alice);
    await idleFor(sha, 100);
    expect((await sweep(false)).moves).toEqual([{ sha256: sha, bytes: 4096, from: 'standard', to: 'archive' }]);
    // The owner's live stream announces the file when it can be downloaded again.
    const events: SseEvent[] = [];
    const stop = new AbortController();
    const streaming = readEvents(`${server.url}/api/events`, alice, (event) => events.push(event), stop.signal);
    await waitFor(() => events.some((event) => event.event === 'ready'), { what: 'the event stream' });

    const refused = await download(id, alice);
    expect(refused.status).toBe(409);
    expect(refused.headers.get('retry-after')).toBe(String(5 * 3600));
    expect(((await refused.json()) as { error: { code: string; restore: string } }).error).toMatchObject({
      code: 'FILE_ARCHIVED',
      restore: 'started',
    });
    const head = await s3().send(new HeadObjectCommand({ Bucket: server.env.S3_BUCKET, Key: await keyOf(sha) }));
    expect(head.Restore).toMatch(/ongoing-request=/);

    // The restore_blob job records the restored copy (moto: TIER_RESTORE_DAYS=2 from now).
    const restoredUntil = await waitFor(async () => (await getFile(server.url, id, alice)).restoredUntil as string | null, {
      what: 'the restore to be recorded',
    });
    expect(new Date(restoredUntil).getTime()).toBeGreaterThan(Date.now() + 86_400_000);
    const announced = await waitFor(() => events.find((event) => event.event === 'status' && (event.data as { id: string }).id === id), {
      what: 'the restored file on the event stream',
    });
    expect(announced.data).toMatchObject({ status: 'ready', storageTier: 'archive', restoredUntil });
    stop.abort();
    await streaming;
    const served = await download(id, alice);
    expect(served.status).toBe(200);
    expect(Buffer.from(await served.arrayBuffer()).equals(data)).toBe(true);
    const audit = await db.sql<{ action: string }[]>`
      select action from audit_log where details->>'sha256' = ${sha} and action <> 'UPLOAD_READY' order by id`;
    expect(audit.map((row) => row.action)).toEqual(['TIER_MOVED', 'RESTORE_REQUESTED', 'BLOB_RESTORED']);
  });

  it('restores on request (POST /api/files/:id/restore), for its owner only', async () => {
    const data = randomBytes(2048);
    const id = await ready(data, alice);
    const restore = (who: Record<string, string>) => fetch(`${server.url}/api/files/${id}/restore`, { method: 'POST', headers: who });

    const standard = await restore(alice);
    expect(standard.status).toBe(200);
    expect(await standard.json()).toEqual({ status: 'available', retryAfter: null });
    await idleFor(sha256(data), 100);
    await sweep(false);

    const foreign = await restore(bob);
    expect(foreign.status).toBe(404);
    expect(((await foreign.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    const started = await restore(alice);
    expect(started.status).toBe(202);
    expect(started.headers.get('retry-after')).toBe(String(5 * 3600));
    expect(await started.json()).toEqual({ status: 'restoring', retryAfter: 5 * 3600 });

    await waitFor(async () => (await getFile(server.url, id, alice)).restoredUntil, { what: 'the restore to be recorded' });
    expect(await (await restore(alice)).json()).toEqual({ status: 'available', retryAfter: null });
    const served = await download(id, alice);
    expect(Buffer.from(await served.arrayBuffer()).equals(data)).toBe(true);
  });

  it('finishes a move that a crash interrupted after the copy: the object stays readable', async () => {
    const data = randomBytes(1024);
    const sha = sha256(data);
    const id = await ready(data, alice);
    await idleFor(sha, 40);
    // What the sweep's copy did before the process died, without the record update that follows it.
    const key = await keyOf(sha);
    const Bucket = server.env.S3_BUCKET;
    await s3().send(new CopyObjectCommand({ Bucket, Key: key, CopySource: `${Bucket}/${key}`, StorageClass: 'STANDARD_IA' }));
    expect((await getFile(server.url, id, alice)).storageTier).toBe('standard');
    const meanwhile = await download(id, alice);
    expect(Buffer.from(await meanwhile.arrayBuffer()).equals(data)).toBe(true);
    await idleFor(sha, 40);

    expect((await sweep(false)).moves).toEqual([{ sha256: sha, bytes: 1024, from: 'standard', to: 'infrequent' }]);
    expect(await storageClass(key)).toBe('STANDARD_IA');
    expect((await getFile(server.url, id, alice)).storageTier).toBe('infrequent');
  });
});
