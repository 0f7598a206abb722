// Crash and resume: ten clients upload in 1 MiB chunks while the server is killed with SIGKILL at
// random moments, several times, and started again on the same port. The clients retry patiently.
// Afterwards every file must be ready and byte-identical, with no stray rows, blobs or temp files.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { seededRandom } from '../support/flaky-proxy.js';
import { waitFor } from '../support/ports.js';
import { serverEnv, spawnServer, type ChildServer } from '../support/server.js';
import {
  downloadSha256,
  filesUnder,
  formatMiB,
  idOf,
  SCALE,
  seededBytes,
  sha256,
  sleep,
  suiteSeed,
  timed,
  trackedUpload,
  type TrackedUpload,
  abortUploads,
} from './support.js';

const { files: FILES, size: SIZE, chunkSize: CHUNK, kills: KILLS } = SCALE.crash;

describe('crash and resume', () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let server: ChildServer | undefined;

  beforeAll(async () => {
    db = await createTestDatabase('rel');
    env = await serverEnv({ databaseUrl: db.url, storage: 'file', extra: { RECONCILE_AFTER: '2s' } });
  });
  afterAll(async () => {
    await abortUploads();
    await server?.kill('SIGKILL');
    await db?.drop();
  });

  it(`${FILES} uploads of ${formatMiB(SIZE)} survive ${KILLS} SIGKILLs byte-identical, with nothing left over`, async () => {
    const seed = suiteSeed();
    const random = seededRandom(seed);
    console.log(`[reliability] crash-resume seed ${seed} (RELIABILITY_SEED replays it)`);
    server = await spawnServer(env);
    const port = server.port;
    const endpoint = `${server.url}/files`;
    const total = FILES * SIZE;

    // Half the clients send Upload-Checksum with each chunk, so bodies also go through the spool.
    const uploads: TrackedUpload[] = Array.from({ length: FILES }, (_, i) =>
      trackedUpload(seededBytes(SIZE, seed + i), {
        endpoint,
        filename: `crash-${i}.bin`,
        chunkSize: CHUNK,
        ...(i % 2 === 1 ? { checksum: 'sha1' as const } : {}),
      }),
    );
    const acknowledged = () => uploads.reduce((sum, u) => sum + u.acknowledged, 0);
    let finished = false;
    const allDone = Promise.all(uploads.map((u) => u.done)).finally(() => {
      finished = true;
    });

    // Kill points: random fractions of the total, spread over the run. Kills start once every
    // upload exists: a creation whose answer is lost makes an unknowable orphan (tus creation
    // is not idempotent), which is the expiry sweep's business, not this test's.
    const points = Array.from({ length: KILLS }, (_, k) => (k + 0.2 + random() * 0.6) / (KILLS + 0.5)).sort();
    const kills: Array<{ at: number; acknowledged: number; signal: string | null; restartMs: number }> = [];
    const killer = (async () => {
      for (const point of points) {
        while (!finished && (acknowledged() < point * total || uploads.some((u) => !u.url))) await sleep(10);
        if (finished) return;
        await sleep(random() * 250);
        const child = server!.process;
        const at = acknowledged();
        await server!.kill('SIGKILL');
        const started = performance.now();
        server = await spawnServer(env, port);
        kills.push({ at, acknowledged: at / total, signal: child.signalCode, restartMs: Math.round(performance.now() - started) });
      }
    })();

    await timed('crash-resume: uploads with kills', () => Promise.all([allDone, killer]));
    console.log(`[reliability] crash-resume kills: ${JSON.stringify(kills)}`);
    expect(kills.length).toBe(KILLS);
    for (const kill of kills) expect(kill.signal).toBe('SIGKILL');
    // Nothing acknowledged was lost (no HEAD below an acknowledged offset), every client resumed
    // its own upload (one creation each), and every client had to recover from a kill.
    expect(uploads.flatMap((u) => u.regressions)).toEqual([]);
    expect(uploads.map((u) => u.posts)).toEqual(uploads.map(() => 1));
    expect(uploads.filter((u) => u.networkErrors > 0 || u.statuses.some((s) => s.endsWith(' 503'))).length).toBeGreaterThan(0);

    const base = server!.url;
    const ids = uploads.map((u) => idOf(u.url!));
    const records = await timed('crash-resume: processing', () => Promise.all(ids.map((id) => waitForFinal(base, id, { timeoutMs: 120_000 }))));
    for (const [i, record] of records.entries()) {
      expect(record.status, `upload ${i} (${record.id})`).toBe('ready');
      expect(record.size).toBe(SIZE);
      expect(record.sha256).toBe(sha256(uploads[i]!.data));
    }
    await timed('crash-resume: downloads', async () => {
      for (const [i, id] of ids.entries()) {
        const download = await downloadSha256(base, id);
        expect(download.status).toBe(200);
        expect(download.size).toBe(SIZE);
        expect(download.sha256, `download of upload ${i}`).toBe(sha256(uploads[i]!.data));
      }
    });

    // No orphan rows: exactly the ten uploads, all ready, each with its own blob and one audit
    // entry per transition; the quota holds exactly their bytes.
    const rows = await db.sql<{ id: string; status: string }[]>`select id, status from uploads order by id`;
    expect(rows.map((r) => r.id)).toEqual([...ids].sort());
    expect(rows.every((r) => r.status === 'ready')).toBe(true);
    const blobs = await db.sql<{ sha256: string; ref_count: number; storage_key: string }[]>`select sha256, ref_count, storage_key from blobs`;
    expect(blobs).toHaveLength(FILES);
    expect(blobs.every((b) => b.ref_count === 1)).toBe(true);
    const audit = await db.sql<{ action: string; n: number }[]>`
      select action, count(*)::int as n from audit_log group by action order by action`;
    expect(Object.fromEntries(audit.map((a) => [a.action, a.n]))).toEqual({
      UPLOAD_CREATED: FILES,
      UPLOAD_COMPLETED: FILES,
      UPLOAD_READY: FILES,
    });
    const [owner] = await db.sql<{ used_bytes: number; reserved_bytes: number; file_count: number }[]>`
      select used_bytes::float8 as used_bytes, reserved_bytes::float8 as reserved_bytes, file_count from owners`;
    expect(owner).toEqual({ used_bytes: total, reserved_bytes: 0, file_count: FILES });
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

    // No leftover temp files: nothing in the spool (checksummed bodies waiting for verification)
    // and no half-assembled objects; the stored objects are exactly the blobs' (plus tus info).
    const dataDir = env.DATA_DIR!;
    const spool = await filesUnder(path.join(dataDir, 'spool'));
    expect(spool, 'files left in DATA_DIR/spool').toEqual([]);
    const stored = await filesUnder(path.join(dataDir, 'files'));
    expect(stored.filter((f) => f.endsWith('.assembling'))).toEqual([]);
    expect(stored.filter((f) => !f.endsWith('.json')).sort()).toEqual(blobs.map((b) => b.storage_key).sort());
  });
});
