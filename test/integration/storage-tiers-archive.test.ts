// Disk storage with an archive bucket (STORAGE=file + ARCHIVE_S3_*) against its own moto (the
// restore-still-running test changes how moto progresses restores, for every key of the server)
// and real Postgres. Time cannot pass in a test, so "not accessed for 25 days" is written into the
// records; TIER_KIND_ARCHIVE_AFTER=other=20d (random bytes are kind `other`) archives them sooner
// than the global 90 days.
import { createHash, randomBytes } from 'node:crypto';
import { access, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand, RestoreObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFile, runCleanup, waitForFinal } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { s3Client, startMoto, type Moto } from '../support/moto.js';
import { waitFor } from '../support/ports.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';
import { readEvents, type SseEvent } from '../support/sse.js';
import { sha256, upload } from '../support/tus.js';
import { startReceiver, verify, type Receiver } from '../support/webhook-receiver.js';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const BUCKET = 'tv-archive';

interface TierReport {
  count: number;
  bytes: number;
  ids: string[];
  moves: Array<{ sha256: string; bytes: number; from: string; to: string }>;
}

describe('storage tiers (disk with an archive bucket)', () => {
  let moto: Moto;
  let db: TestDatabase;
  let server: TestServer;
  let receiver: Receiver;
  let alice: Record<string, string>;
  let bob: Record<string, string>;
  let admin: Record<string, string>;
  const s3 = () => s3Client(moto.endpoint);

  beforeAll(async () => {
    moto = await startMoto();
    await s3().send(new CreateBucketCommand({ Bucket: BUCKET }));
    db = await createTestDatabase();
    receiver = await startReceiver();
    const extra = jwtEnv({
      TIER_INFREQUENT_AFTER: '10d',
      TIER_ARCHIVE_AFTER: '90d',
      TIER_KIND_ARCHIVE_AFTER: 'other=20d',
      TIER_RESTORE_DAYS: '2',
      ARCHIVE_S3_BUCKET: BUCKET,
      ARCHIVE_S3_ENDPOINT: moto.endpoint,
      ARCHIVE_S3_REGION: 'us-east-1',
      ARCHIVE_S3_ACCESS_KEY_ID: 'test',
      ARCHIVE_S3_SECRET_ACCESS_KEY: 'test',
      ARCHIVE_S3_FORCE_PATH_STYLE: 'true',
      WEBHOOK_URL: `${receiver.url}/hook`,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_EVENTS: 'file.restored',
      WEBHOOK_ALLOW_PRIVATE: 'true',
      // Objects of the orphan test are as young as the test; nothing unrecorded is in flight here.
      ORPHAN_GRACE: '0s',
    });
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage: 'file', extra }));
    alice = await bearer('alice');
    bob = await bearer('bob');
    admin = await bearer('operator', { role: 'admin' });
  });
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
    await db?.drop();
    await moto?.stop();
  });

  const sweep = async (dryRun: boolean): Promise<TierReport> =>
    (await runCleanup<{ tierMoves: TierReport }>(server.url, admin, dryRun)).tierMoves;
  const orphanSweep = async (dryRun: boolean) =>
    (await runCleanup<{ orphans: { ids: string[]; count: number; bytes: number } }>(server.url, admin, dryRun)).orphans;
  const keyOf = async (sha: string) => (await db.sql<{ storage_key: string }[]>`select storage_key from blobs where sha256 = ${sha}`)[0]!.storage_key;
  const localPath = (key: string) => path.join(server.env.DATA_DIR!, 'files', key);
  const onDisk = (key: string) => access(localPath(key)).then(() => true, () => false);
  const archived = (key: string) =>
    s3()
      .send(new HeadObjectCommand({ Bucket: BUCKET, Key: key, ChecksumMode: 'ENABLED' }))
      .catch((error: { name?: string }) => (error.name === 'NotFound' ? null : Promise.reject(error)));
  const base64Sha = (data: Buffer) => createHash('sha256').update(data).digest('base64');
  const idleFor = async (sha: string, days: number) =>
    db.sql`update uploads set last_accessed_at = now() - ${`${days} days`}::interval, ready_at = now() - ${`${days} days`}::interval
           where blob_sha256 = ${sha}`;
  const download = (id: string, headers: Record<string, string>) => fetch(`${server.url}/api/files/${id}/content`, { headers });
  const ready = async (data: Buffer, headers: Record<string, string>, filename = 'show.bin') => {
    const id = await upload(data, { endpoint: `${server.url}/files`, filename, headers });
    expect((await waitForFinal(server.url, id, { headers })).status).toBe('ready');
    return id;
  };
  const errorCode = async (response: Response) => ((await response.json()) as { error: { code: string } }).error.code;

  it('archives a cold shared blob to the bucket once (checksum checked, then deleted locally); restores it on download and serves it from the bucket', async () => {
    const data = randomBytes(70_000);
    const sha = sha256(data);
    const aliceId = await ready(data, alice);
    const bobId = await ready(data, bob);
    const key = await keyOf(sha);
    expect(await onDisk(key)).toBe(true);

    // Local disk has no infrequent-access class: 15 idle days (past TIER_INFREQUENT_AFTER) move nothing.
    await idleFor(sha, 15);
    expect((await sweep(true)).moves).toEqual([]);
    await idleFor(sha, 25);
    const planned = await sweep(true);
    expect(planned.moves).toEqual([{ sha256: sha, bytes: data.length, from: 'standard', to: 'archive' }]);
    expect(await archived(key)).toBeNull();
    expect(await sweep(false)).toEqual(planned);

    const copy = await archived(key);
    expect(copy).toMatchObject({ StorageClass: 'GLACIER', ContentLength: data.length, ChecksumSHA256: base64Sha(data) });
    expect(await onDisk(key)).toBe(false);
    expect(await getFile(server.url, aliceId, alice)).toMatchObject({ status: 'ready', storageTier: 'archive', restoredUntil: null });
    expect((await sweep(false)).moves).toEqual([]);

    // The file's own event stream stays open for an archived file and says when it is back.
    const events: SseEvent[] = [];
    const stop = new AbortController();
    const streaming = readEvents(`${server.url}/api/files/${bobId}/events`, bob, (event) => events.push(event), stop.signal);
    await waitFor(() => events.some((event) => event.event === 'snapshot'), { what: 'the snapshot' });

    const refused = await download(aliceId, alice);
    expect(refused.status).toBe(409);
    expect(refused.headers.get('retry-after')).toBe(String(5 * 3600));
    expect(await errorCode(refused)).toBe('FILE_ARCHIVED');
    // Another owner's id is a 404 like a missing one, archived or not.
    const foreign = await fetch(`${server.url}/api/files/${aliceId}/restore`, { method: 'POST', headers: bob });
    expect(foreign.status).toBe(404);

    const restored = await waitFor(() => events.find((event) => event.event === 'restored'), { what: 'the restored event' });
    const restoredUntil = (restored.data as { restoredUntil: string }).restoredUntil;
    expect(restored.data).toMatchObject({ id: bobId, status: 'ready', storageTier: 'archive' });
    expect(new Date(restoredUntil).getTime()).toBeGreaterThan(Date.now() + 86_400_000);
    expect((await streaming).ended).toBe(true);
    stop.abort();

    // One signed file.restored per file of the blob, each with its owner's record.
    const hooks = await waitFor(() => {
      const got = receiver.received.filter((r) => r.body.type === 'file.restored' && [aliceId, bobId].includes(r.body.data.id));
      return got.length === 2 ? got : null;
    }, { what: 'two file.restored webhooks' });
    for (const hook of hooks) {
      expect(verify(hook, SECRET)).toMatchObject({ type: 'file.restored', data: { status: 'ready', storageTier: 'archive', restoredUntil } });
    }
    expect(new Set(hooks.map((hook) => hook.body.data.ownerId))).toEqual(new Set(['alice', 'bob']));

    // Served from the bucket (nothing came back to disk), whole and in ranges.
    const served = await download(aliceId, alice);
    expect(served.status).toBe(200);
    expect(Buffer.from(await served.arrayBuffer()).equals(data)).toBe(true);
    const part = await fetch(`${server.url}/api/files/${bobId}/content`, { headers: { ...bob, Range: 'bytes=1000-1999' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 1000-1999/${data.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(data.subarray(1000, 2000))).toBe(true);
    expect(await onDisk(key)).toBe(false);

    // Deleting the last file removes the archived copy too.
    expect((await fetch(`${server.url}/api/files/${aliceId}`, { method: 'DELETE', headers: alice })).status).toBe(204);
    expect(await archived(key)).not.toBeNull();
    expect((await fetch(`${server.url}/api/files/${bobId}`, { method: 'DELETE', headers: bob })).status).toBe(204);
    expect(await archived(key)).toBeNull();
  });

  it('finishes a move that stopped after the copy, and replaces a copy that does not match', async () => {
    const data = randomBytes(5000);
    const other = randomBytes(5000);
    const [finished, replaced] = [data, other].map(sha256) as [string, string];
    const finishedId = await ready(data, alice, 'copied.bin');
    const replacedId = await ready(other, alice, 'bad-copy.bin');
    const [finishedKey, replacedKey] = [await keyOf(finished), await keyOf(replaced)];
    // What a sweep that died after its upload left: a good copy; and a copy of other bytes.
    await s3().send(new PutObjectCommand({ Bucket: BUCKET, Key: finishedKey, Body: data, StorageClass: 'GLACIER', ChecksumAlgorithm: 'SHA256' }));
    await s3().send(new PutObjectCommand({ Bucket: BUCKET, Key: replacedKey, Body: randomBytes(5000), StorageClass: 'GLACIER', ChecksumAlgorithm: 'SHA256' }));
    // The local file is still the one read meanwhile.
    expect(Buffer.from(await (await download(finishedId, alice)).arrayBuffer()).equals(data)).toBe(true);

    await idleFor(finished, 25);
    await idleFor(replaced, 25);
    const moves = (await sweep(false)).moves;
    expect(moves).toHaveLength(2);
    expect(moves).toEqual(expect.arrayContaining([expect.objectContaining({ sha256: finished, to: 'archive' }), expect.objectContaining({ sha256: replaced, to: 'archive' })]));
    expect(await archived(finishedKey)).toMatchObject({ ChecksumSHA256: base64Sha(data) });
    expect(await archived(replacedKey)).toMatchObject({ ChecksumSHA256: base64Sha(other) });
    expect([await onDisk(finishedKey), await onDisk(replacedKey)]).toEqual([false, false]);
    expect((await getFile(server.url, replacedId, alice)).storageTier).toBe('archive');
  });

  it('keeps the local file when its bytes do not match the record (nothing is deleted unverified)', async () => {
    const data = randomBytes(3000);
    const sha = sha256(data);
    const id = await ready(data, alice, 'rotten.bin');
    const key = await keyOf(sha);
    // Bit rot on disk: same size, other bytes.
    await writeFile(localPath(key), randomBytes(3000));
    await idleFor(sha, 25);
    expect((await sweep(false)).moves.filter((move) => move.sha256 === sha)).toEqual([]);
    expect(await onDisk(key)).toBe(true);
    expect((await getFile(server.url, id, alice)).storageTier).toBe('standard');
    // The next sweep tries again (and refuses again) rather than recording a bad archive.
    expect((await sweep(false)).moves.filter((move) => move.sha256 === sha)).toEqual([]);
    expect(await onDisk(key)).toBe(true);
  });

  it('while the bucket is still restoring, downloads stay 409 and the job asks again later; then the file comes back', async () => {
    const data = randomBytes(4000);
    const sha = sha256(data);
    const id = await ready(data, alice, 'slow.bin');
    await idleFor(sha, 25);
    expect((await sweep(false)).moves).toEqual([{ sha256: sha, bytes: 4000, from: 'standard', to: 'archive' }]);
    const key = await keyOf(sha);
    const transition = (body: object) =>
      fetch(`${moto.endpoint}/moto-api/state-manager/set-transition`, { method: 'POST', body: JSON.stringify(body) });
    // moto moves a restore one state (none → ongoing → done) per read of the object once it was
    // read `times` times: started here and read once it is ongoing, then held there.
    expect((await transition({ model_name: 's3::keyrestore', transition: { progression: 'manual', times: 1 } })).status).toBe(201);
    try {
      await s3().send(new RestoreObjectCommand({ Bucket: BUCKET, Key: key, RestoreRequest: { Days: 2 } }));
      expect((await archived(key))?.Restore).toBe('ongoing-request="true"');
      await transition({ model_name: 's3::keyrestore', transition: { progression: 'manual', times: 1_000_000 } });
      const refused = await download(id, alice);
      expect(refused.status).toBe(409);
      expect(await errorCode(refused)).toBe('FILE_ARCHIVED');
      expect((await archived(key))?.Restore).toBe('ongoing-request="true"');
      // The poll saw it ongoing and is scheduled again RESTORE_POLL_MS (15 min) later.
      const next = await waitFor(async () => {
        const [job] = await db.sql<{ run_at: Date; attempts: number }[]>`
          select run_at, attempts from graphile_worker.jobs where task_identifier = 'restore_blob' and key = ${`restore:${sha}`}`;
        return job && job.run_at.getTime() > Date.now() + 10 * 60_000 ? job : null;
      }, { what: 'the restore poll to be rescheduled' });
      expect(next.attempts).toBe(0);
      expect((await getFile(server.url, id, alice)).restoredUntil).toBeNull();
      const still = await download(id, alice);
      expect(still.status).toBe(409);
      expect(still.headers.get('retry-after')).toBe(String(5 * 3600));
    } finally {
      await transition({ model_name: 's3::keyrestore', transition: { progression: 'immediate' } });
    }
    // The restore finishes; the next poll (brought forward) records it.
    await db.sql`select graphile_worker.reschedule_jobs(array(
                   select id from graphile_worker.jobs where task_identifier = 'restore_blob' and key = ${`restore:${sha}`}), run_at := now())`;
    await waitFor(async () => (await getFile(server.url, id, alice)).restoredUntil, { what: 'the restore to be recorded' });
    const served = await download(id, alice);
    expect(served.status).toBe(200);
    expect(Buffer.from(await served.arrayBuffer()).equals(data)).toBe(true);
  });

  it('counts quota bytes and the analytics whatever the tier; the analytics list what the next sweep moves', async () => {
    const data = randomBytes(6000);
    const sha = sha256(data);
    await ready(data, bob, 'quota.bin');
    const quota = async () => (await (await fetch(`${server.url}/api/me/quota`, { headers: bob })).json()) as Record<string, number>;
    const before = await quota();
    await idleFor(sha, 25);
    const analytics = async () =>
      (await (await fetch(`${server.url}/api/admin/analytics/tiers`, { headers: admin })).json()) as {
        candidates: { count: number; moves: TierReport['moves'] };
      };
    const planned = await sweep(true);
    expect((await analytics()).candidates.moves).toEqual(planned.moves);
    expect(planned.moves).toContainEqual({ sha256: sha, bytes: 6000, from: 'standard', to: 'archive' });
    await sweep(false);
    // Moved: no longer a candidate (the rotten blob of the test before still is: its move fails).
    expect((await analytics()).candidates.moves.map((move) => move.sha256)).not.toContain(sha);
    expect(await quota()).toEqual(before);
  });
  it('the orphan sweep removes archived copies no blob references, once even when also on disk; the dry run lists them', async () => {
    const data = randomBytes(2500);
    const sha = sha256(data);
    const id = await ready(data, alice, 'kept.bin');
    await idleFor(sha, 25);
    expect((await sweep(false)).moves).toContainEqual({ sha256: sha, bytes: 2500, from: 'standard', to: 'archive' });
    const kept = await keyOf(sha);
    expect(await archived(kept)).not.toBeNull();
    // What a crash between a blob's removal and its copy's leaves: copies no record names, one
    // only in the bucket, one also on disk (a move that stopped between the copy and the local delete).
    const [inBucket, onBoth] = [1, 2].map(() => `orphan-${randomBytes(8).toString('hex')}`) as [string, string];
    for (const key of [inBucket, onBoth]) {
      await s3().send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: randomBytes(700), StorageClass: 'GLACIER' }));
    }
    await writeFile(localPath(onBoth), randomBytes(700));

    const planned = await orphanSweep(true);
    expect(planned.ids.filter((key) => [inBucket, onBoth, kept].includes(key)).sort()).toEqual([inBucket, onBoth].sort());
    expect(await archived(inBucket)).not.toBeNull();
    expect(await onDisk(onBoth)).toBe(true);

    const removed = await orphanSweep(false);
    expect(removed.ids.filter((key) => [inBucket, onBoth, kept].includes(key)).sort()).toEqual([inBucket, onBoth].sort());
    expect([await archived(inBucket), await archived(onBoth), await onDisk(onBoth)]).toEqual([null, null, false]);
    // The referenced copy stays, and so does its file.
    expect(await archived(kept)).toMatchObject({ StorageClass: 'GLACIER', ContentLength: 2500 });
    expect(await getFile(server.url, id, alice)).toMatchObject({ status: 'ready', storageTier: 'archive' });
    const [audited] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from audit_log where action = 'ORPHAN_REMOVED' and details->>'key' in ${db.sql([inBucket, onBoth])}`;
    expect(audited!.n).toBe(2);
    expect((await orphanSweep(true)).ids.filter((key) => [inBucket, onBoth].includes(key))).toEqual([]);
  });
});
