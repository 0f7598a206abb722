// PostgreSQL restarts while uploads are in flight. The test runs its own embedded cluster (so
// stopping it disturbs no other test) and stops it in the middle of six uploads that go through a
// slow link. While the database is down the server must stay up, answer 503 DATABASE_UNAVAILABLE
// (retryable, with Retry-After) instead of crashing or answering 500, and report itself unready;
// once the database is back it recovers by itself: the clients finish, nothing they were
// acknowledged is lost, and the worker processes every file.
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.js';
import { waitForFinal } from '../support/api.js';
import { FlakyProxy } from '../support/flaky-proxy.js';
import { waitFor } from '../support/ports.js';
import { serverEnv, spawnServer, type ChildServer } from '../support/server.js';
import {
  downloadSha256,
  formatMiB,
  idOf,
  KiB,
  SCALE,
  seededBytes,
  sha256,
  sleep,
  suiteSeed,
  timed,
  trackedUpload,
  type TrackedUpload,
  reportIfDied,
  abortUploads,
  probeOutage,
} from './support.js';

const { files: FILES, size: SIZE, bytesPerSecond: LINK_SPEED } = SCALE.postgres;
const OUTAGE_MS = 6_000;

describe('PostgreSQL restart during uploads', () => {
  let dir: string;
  let pg: EmbeddedDatabase;
  let server: ChildServer | undefined;
  let proxy: FlakyProxy | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tusvault-rel-pg-'));
    // As root, postgres runs as the postgres user, which must be able to enter the directory.
    await chmod(dir, 0o755);
    pg = await timed('postgres-restart: own cluster', () => startEmbeddedPostgres(dir, pino({ level: 'warn' })));
  });
  afterAll(async () => {
    await abortUploads();
    reportIfDied('postgres-restart server', server);
    await proxy?.close();
    await server?.kill('SIGKILL');
    await pg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 503 DATABASE_UNAVAILABLE while it is down, recovers by itself, loses nothing', async () => {
    const env = await serverEnv({ databaseUrl: pg.url, storage: 'file', extra: { RECONCILE_AFTER: '2s' } });
    server = await timed('postgres-restart: server start', () => spawnServer(env));
    proxy = await FlakyProxy.start({ host: '127.0.0.1', port: server.port }, { seed: suiteSeed() });
    proxy.throttle(LINK_SPEED);
    const total = FILES * SIZE;

    const uploads: TrackedUpload[] = Array.from({ length: FILES }, (_, i) =>
      trackedUpload(seededBytes(SIZE, proxy!.seed + i), {
        endpoint: `${proxy!.url}/files`,
        filename: `pg-${i}.bin`,
        chunkSize: (i % 2 === 0 ? 256 : 1024) * KiB,
        ...(i % 3 === 0 ? { checksum: 'md5' as const } : {}),
      }),
    );
    const acknowledged = () => uploads.reduce((sum, u) => sum + u.acknowledged, 0);
    await timed('postgres-restart: first quarter uploaded', () =>
      waitFor(() => uploads.every((u) => u.url) && acknowledged() >= total * 0.25, { timeoutMs: 60_000, what: 'uploads under way' }),
    );
    const someId = idOf(uploads[0]!.url!);

    // Down.
    const before = acknowledged();
    await pg.stop();
    const stoppedAt = Date.now();
    console.log(`[reliability] postgres stopped with ${formatMiB(before)} of ${formatMiB(total)} acknowledged`);

    const alive = (when: string) =>
      expect(server!.process.exitCode ?? server!.process.signalCode, `the server process died ${when} (its log is printed after the test)`).toBeNull();
    // Connections that were open notice the shutdown; new ones are refused. Probe past both.
    await sleep(1_000);
    alive('when PostgreSQL stopped');
    const direct = server.url;
    const probes = await probeOutage(direct, someId, ['healthz', 'readyz', 'create', 'head', 'patch', 'record', 'list']);
    console.log(`[reliability] while postgres is down: ${JSON.stringify(probes)}`);
    expect(probes.healthz.status).toBe(200);
    expect(probes.readyz.status).toBe(503);
    for (const name of ['create', 'patch', 'record', 'list'] as const) {
      expect(probes[name], name).toMatchObject({ status: 503, code: 'DATABASE_UNAVAILABLE', retryAfter: '5' });
    }
    // HEAD: 423 + Retry-After, the one failed HEAD tus-js-client retries rather than restarting
    // the upload from byte 0 (it has no body: the status says it).
    expect(probes.head).toMatchObject({ status: 423, code: null, retryAfter: '5' });

    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt)));
    alive('while PostgreSQL was down');
    // Back up (same port, same data).
    await pg.start();
    const restartedAt = Date.now();
    await timed('postgres-restart: /readyz back', () =>
      waitFor(async () => (await fetch(`${direct}/readyz`)).status === 200, { timeoutMs: 30_000, intervalMs: 200, what: '/readyz 200' }),
    );

    await timed('postgres-restart: uploads finish', () => Promise.all(uploads.map((u) => u.done)));
    alive('after PostgreSQL came back');
    proxy.throttle(null);

    // Nothing acknowledged was lost, no client saw a 500, and the worker processed everything.
    expect(uploads.flatMap((u) => u.regressions)).toEqual([]);
    const statuses = uploads.flatMap((u) => u.statuses);
    const failures = statuses.filter((s) => Number(s.split(' ')[1]) >= 400);
    console.log(`[reliability] postgres-restart: client errors ${JSON.stringify(countBy(failures))}, ${uploads.reduce((n, u) => n + u.networkErrors, 0)} network errors`);
    expect(failures.filter((s) => !/ (503|409|423)$/.test(s)), 'only retryable errors').toEqual([]);

    // Every client resumed its own upload: one creation each, and no abandoned rows.
    expect(uploads.map((u) => u.posts)).toEqual(uploads.map(() => 1));
    const ids = uploads.map((u) => idOf(u.url!));
    const records = await timed('postgres-restart: processing', () => Promise.all(ids.map((id) => waitForFinal(direct, id, { timeoutMs: 90_000 }))));
    for (const [i, record] of records.entries()) {
      expect(record.status, `upload ${i}`).toBe('ready');
      expect(record.sha256).toBe(sha256(uploads[i]!.data));
      expect((await downloadSha256(direct, ids[i]!)).sha256).toBe(sha256(uploads[i]!.data));
    }

    // The worker (graphile-worker, liveness, LISTEN) is alive after the restart: a new upload is
    // processed at once, not by luck of an earlier poll.
    const after = seededBytes(300 * KiB, 7);
    const afterId = idOf(await trackedUpload(after, { endpoint: `${direct}/files`, filename: 'after.bin' }).done);
    const afterRecord = await timed('postgres-restart: new upload after restart', () => waitForFinal(direct, afterId, { timeoutMs: 30_000 }));
    expect(afterRecord.status).toBe('ready');
    console.log(`[reliability] postgres-restart: everything ready ${Date.now() - restartedAt} ms after the database came back`);
    const probe = postgres(pg.url, { max: 1, onnotice: () => {} });
    try {
      const rows = await probe<{ id: string; status: string }[]>`select id, status from uploads`;
      expect(rows.map((r) => r.id).sort()).toEqual([...ids, afterId].sort());
      expect(rows.every((r) => r.status === 'ready')).toBe(true);
    } finally {
      await probe.end();
    }
    alive('at the end');
  });
});

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const value of values) out[value] = (out[value] ?? 0) + 1;
  return out;
}
