// Worker crash mid-task: an API process (ROLE=api) takes the uploads, a separate worker process
// (ROLE=worker) processes them, reading the bytes from S3 through a throttled proxy so each job
// takes a while. The worker is killed with SIGKILL in the middle of a job, a new one is started
// (and killed again at a random moment), and a last one finishes. graphile-worker alone would
// leave the dead worker's jobs locked for four hours; the reconciler must hand them back within
// seconds, and every effect (hashes, de-duplication, quota, audit) must land exactly once.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { FlakyProxy, seededRandom } from '../support/flaky-proxy.js';
import { waitFor } from '../support/ports.js';
import { serverEnv, spawnServer, type ChildServer } from '../support/server.js';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { s3Client } from '../support/moto.js';
import {
  downloadSha256,
  formatMiB,
  idOf,
  MiB,
  SCALE,
  seededBytes,
  sha256,
  sleep,
  suiteSeed,
  timed,
  trackedUpload,
  abortUploads,
} from './support.js';

const { files: FILES, size: SIZE, readBytesPerSecond: READ_RATE } = SCALE.worker;

interface LockedJob {
  id: string;
  task_identifier: string;
  locked_by: string | null;
  attempts: number;
  key: string | null;
}

describe('worker crash mid-task', () => {
  let db: TestDatabase;
  let apiEnv: Record<string, string>;
  let workerEnv: Record<string, string>;
  let proxy: FlakyProxy;
  let api: ChildServer | undefined;
  let worker: ChildServer | undefined;

  beforeAll(async () => {
    db = await createTestDatabase('rel');
    apiEnv = await serverEnv({ databaseUrl: db.url, storage: 's3', extra: { ROLE: 'api', RECONCILE_AFTER: '2s' } });
    proxy = await FlakyProxy.to(apiEnv.S3_ENDPOINT!, { seed: suiteSeed() });
    workerEnv = {
      ...apiEnv,
      ROLE: 'worker',
      S3_ENDPOINT: proxy.url,
      WORKER_CONCURRENCY: '2',
      CLAMAV_HOST: inject('clamdHost'),
      CLAMAV_PORT: String(inject('clamdPort')),
    };
  });
  afterAll(async () => {
    await abortUploads();
    await worker?.kill('SIGKILL');
    await api?.kill('SIGKILL');
    await proxy?.close();
    await db?.drop();
  });

  const lockedJobs = () =>
    db.sql<LockedJob[]>`
      select id::text, task_identifier, locked_by, attempts, key from graphile_worker.jobs
      where locked_by is not null and task_identifier <> 'reconcile'`;

  it('retries the killed job within seconds and applies hashes, quota and audit exactly once', async () => {
    const random = seededRandom(proxy.seed);
    console.log(`[reliability] worker-crash seed ${proxy.seed}`);
    api = await spawnServer(apiEnv);

    // Distinct files and one duplicate of the first (de-duplication must count it once).
    const contents = Array.from({ length: FILES }, (_, i) => seededBytes(SIZE, proxy.seed + (i === FILES - 1 ? 0 : i)));
    const ids = await timed('worker-crash: uploads', () =>
      Promise.all(
        contents.map(async (data, i) => idOf(await trackedUpload(data, { endpoint: `${api!.url}/files`, filename: `w-${i}.bin`, chunkSize: 8 * MiB }).done)),
      ),
    );
    const [queued] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from graphile_worker.jobs where task_identifier = 'process_upload'`;
    expect(queued!.n).toBe(FILES);

    // Worker 1 reads at READ_RATE per connection: killed while it is digesting.
    proxy.throttle(READ_RATE);
    worker = await spawnServer(workerEnv);
    const inFlight = await waitFor(
      async () => {
        const jobs = await lockedJobs();
        return jobs.length > 0 && proxy.stats.bytesDown > 1 * MiB ? jobs : null;
      },
      { timeoutMs: 60_000, what: 'worker 1 to be reading a file' },
    );
    await worker.kill('SIGKILL');
    const killedAt = Date.now();
    const dead = new Set(inFlight.map((j) => j.locked_by));
    const killedJobs = new Set(inFlight.map((j) => j.id));
    console.log(`[reliability] worker 1 killed mid-job: ${inFlight.map((j) => `${j.task_identifier}#${j.id}`).join(', ')}`);
    expect((await lockedJobs()).filter((j) => dead.has(j.locked_by))).toHaveLength(inFlight.length); // still locked by the dead worker

    // Watch the killed jobs: they must be picked up again (attempts grows) and then complete.
    const maxAttempts = new Map<string, number>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const rows = await db.sql<{ id: string; attempts: number }[]>`
          select id::text, attempts from graphile_worker.jobs where id = any(${[...killedJobs]}::bigint[])`;
        for (const row of rows) maxAttempts.set(row.id, Math.max(maxAttempts.get(row.id) ?? 0, row.attempts));
        await sleep(100);
      }
    })();

    // Worker 2 (faster): the reconciler frees the dead worker's jobs within seconds, not hours.
    proxy.throttle(READ_RATE * 4);
    worker = await spawnServer(workerEnv);
    await timed('worker-crash: dead worker 1 jobs unlocked', () =>
      waitFor(async () => (await lockedJobs()).every((j) => !dead.has(j.locked_by)), { timeoutMs: 30_000, intervalMs: 100, what: 'dead jobs unlocked' }),
    );
    const unlockedAfter = Date.now() - killedAt;
    expect(unlockedAfter).toBeLessThan(30_000);

    // Killed again at a random moment of its work (digest, scan, linking, finalizing...).
    await waitFor(async () => (await lockedJobs()).length > 0, { timeoutMs: 30_000, what: 'worker 2 busy' });
    await sleep(200 + random() * 2500);
    const second = await lockedJobs();
    await worker.kill('SIGKILL');
    for (const job of second) dead.add(job.locked_by);
    console.log(`[reliability] worker 2 killed with ${second.map((j) => `${j.task_identifier}#${j.id}`).join(', ') || 'no job'} in flight`);

    // Worker 3 at full speed finishes everything.
    proxy.throttle(null);
    const restarted = Date.now();
    worker = await spawnServer(workerEnv);
    const records = await timed('worker-crash: recovery to final', () => Promise.all(ids.map((id) => waitForFinal(api!.url, id, { timeoutMs: 90_000 }))));
    const recoveredIn = Date.now() - restarted;
    watching = false;
    await watcher;
    console.log(`[reliability] worker-crash: worker 1's jobs unlocked ${unlockedAfter} ms after the kill; all final ${recoveredIn} ms after worker 3 started`);
    for (const id of killedJobs) expect(maxAttempts.get(id) ?? 0, `job ${id} was retried`).toBeGreaterThanOrEqual(2);

    // Hashes right, bytes identical, de-duplicated once.
    for (const [i, record] of records.entries()) {
      expect(record.status, `file ${i}`).toBe('ready');
      expect(record.sha256).toBe(sha256(contents[i]!));
      const download = await downloadSha256(api.url, ids[i]!);
      expect(download.sha256).toBe(sha256(contents[i]!));
    }
    expect(records.filter((r) => r.deduplicated)).toHaveLength(1);

    const blobs = await db.sql<{ sha256: string; ref_count: number; storage_key: string }[]>`select sha256, ref_count, storage_key from blobs`;
    const refCounts = Object.fromEntries(blobs.map((b) => [b.sha256, b.ref_count]));
    const expected: Record<string, number> = {};
    for (const data of contents) expected[sha256(data)] = (expected[sha256(data)] ?? 0) + 1;
    expect(refCounts).toEqual(expected);

    // Quota: each file counts (a duplicate too), exactly once; nothing left reserved.
    const quota = (await (await fetch(`${api.url}/api/me/quota`)).json()) as Record<string, number>;
    expect({ usedBytes: quota.usedBytes, fileCount: quota.fileCount, reservedBytes: quota.reservedBytes }).toEqual({
      usedBytes: FILES * SIZE,
      fileCount: FILES,
      reservedBytes: 0,
    });

    // Audit: one entry per upload and transition.
    const audit = await db.sql<{ upload_id: string; action: string; n: number }[]>`
      select upload_id, action, count(*)::int as n from audit_log group by upload_id, action`;
    for (const id of ids) {
      const mine = Object.fromEntries(audit.filter((a) => a.upload_id === id).map((a) => [a.action, a.n]));
      expect(mine, `audit of ${id}`).toEqual({ UPLOAD_CREATED: 1, UPLOAD_COMPLETED: 1, UPLOAD_READY: 1 });
    }

    // Scans: one verdict per blob, and no job left behind.
    const scans = await db.sql<{ scan_status: string }[]>`select scan_status from blobs`;
    expect(scans.every((s) => s.scan_status === 'clean')).toBe(true);
    // graphile-worker deletes a job just after its task commits, so a file can be ready a moment
    // before its job row is gone: wait for the queue to drain rather than race it.
    await waitFor(
      async () => {
        const [pending] = await db.sql<{ n: number }[]>`
          select count(*)::int as n from graphile_worker.jobs where task_identifier not in ('reconcile', 'lifecycle')`;
        return pending!.n === 0;
      },
      { timeoutMs: 10_000, what: 'no processing job left behind' },
    );

    // Storage: exactly the blobs' objects (the duplicate's own copy was removed once).
    const listed = await s3Client(apiEnv.S3_ENDPOINT!).send(new ListObjectsV2Command({ Bucket: apiEnv.S3_BUCKET! }));
    const objects = (listed.Contents ?? []).map((o) => o.Key!).filter((k) => !k.endsWith('.info') && !k.endsWith('.part'));
    expect(objects.sort()).toEqual(blobs.map((b) => b.storage_key).sort());
    console.log(`[reliability] worker-crash: ${FILES} × ${formatMiB(SIZE)}, proxy ${JSON.stringify(proxy.stats)}`);
  });
});
