// Storage faults: the S3 endpoint goes away for a while in the middle of uploads. The server
// reaches S3 (moto) through a proxy that, for the outage, cuts every connection and refuses new
// ones (moto keeps its data in memory, so stopping moto itself would lose the bucket). While S3 is
// away the tus endpoint answers clear 503s naming storage, /readyz says so, and afterwards every
// upload resumes and finishes with nothing lost.
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { FlakyProxy } from '../support/flaky-proxy.js';
import { s3Client } from '../support/moto.js';
import { waitFor } from '../support/ports.js';
import { serverEnv, spawnServer, type ChildServer } from '../support/server.js';
import {
  downloadSha256,
  formatMiB,
  idOf,
  MiB,
  reportIfDied,
  SCALE,
  seededBytes,
  sha256,
  sleep,
  suiteSeed,
  timed,
  trackedUpload,
  type TrackedUpload,
  abortUploads,
  probeOutage,
} from './support.js';

const { files: FILES, size: SIZE, bytesPerSecond: LINK_SPEED } = SCALE.storage;
const OUTAGE_MS = 5_000;

describe('storage outage', () => {
  let db: TestDatabase;
  let server: ChildServer | undefined;
  let s3Proxy: FlakyProxy | undefined;
  let link: FlakyProxy | undefined;

  beforeAll(async () => {
    db = await createTestDatabase('rel');
  });
  afterAll(async () => {
    await abortUploads();
    reportIfDied('storage-outage server', server);
    await link?.close();
    await s3Proxy?.close();
    await server?.kill('SIGKILL');
    await db?.drop();
  });

  it('answers clear 503s while S3 is away and loses nothing once it is back', async () => {
    const env = await serverEnv({ databaseUrl: db.url, storage: 's3', extra: { RECONCILE_AFTER: '2s' } });
    const motoEndpoint = env.S3_ENDPOINT!;
    s3Proxy = await FlakyProxy.to(motoEndpoint, { seed: suiteSeed() });
    server = await spawnServer({ ...env, S3_ENDPOINT: s3Proxy.url });
    // The clients' link is slow enough for the outage to land in the middle of the uploads.
    link = await FlakyProxy.start({ host: '127.0.0.1', port: server.port }, { seed: s3Proxy.seed });
    link.throttle(LINK_SPEED);
    const total = FILES * SIZE;

    // Chunks below, at and above the S3 part size (8 MiB): .part objects, whole parts, both.
    const chunkSizes = Array.from({ length: FILES }, (_, i) => [2, 8, 6, 3][i % 4]! * MiB);
    const uploads: TrackedUpload[] = Array.from({ length: FILES }, (_, i) =>
      trackedUpload(seededBytes(SIZE, s3Proxy!.seed + i), {
        endpoint: `${link!.url}/files`,
        filename: `s3-${i}.bin`,
        chunkSize: chunkSizes[i]!,
        ...(i === 1 ? { checksum: 'crc32' as const } : {}),
      }),
    );
    const acknowledged = () => uploads.reduce((sum, u) => sum + u.acknowledged, 0);
    await timed('storage-outage: first quarter uploaded', () =>
      waitFor(() => uploads.every((u) => u.url) && acknowledged() >= total * 0.25, { timeoutMs: 90_000, what: 'uploads under way' }),
    );

    // S3 goes away: open connections cut, new ones refused.
    const before = acknowledged();
    await s3Proxy.outage();
    const downAt = Date.now();
    console.log(`[reliability] S3 down with ${formatMiB(before)} of ${formatMiB(total)} acknowledged`);
    await sleep(500);

    const direct = server.url;
    const someId = idOf(uploads[0]!.url!);
    const probes = await probeOutage(direct, someId, ['healthz', 'readyz', 'create', 'head', 'createWithBody']);
    console.log(`[reliability] while S3 is down: ${JSON.stringify(probes, (k, v) => (k === 'body' && typeof v === 'object' ? (v as { error?: unknown }).error ?? v : v))}`);
    expect(server.process.exitCode).toBeNull();
    expect(probes.healthz.status).toBe(200);
    expect(probes.readyz.status).toBe(503);
    expect((probes.readyz.body as { checks: Record<string, string> }).checks.database).toBe('ok');
    expect((probes.readyz.body as { checks: Record<string, string> }).checks.storage).not.toBe('ok');
    for (const name of ['create', 'createWithBody'] as const) {
      expect(probes[name]!.status, name).toBe(503);
      expect(['STORAGE_UNAVAILABLE', 'STORAGE_WRITE_FAILED'], `${name}: ${JSON.stringify(probes[name]!.body)}`).toContain(probes[name]!.code);
      expect(probes[name]!.retryAfter, name).toBe('5');
    }
    // HEAD: 423 + Retry-After, which tus-js-client retries (a 503 would make it start over).
    expect(probes.head).toMatchObject({ status: 423, retryAfter: '5' });

    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - downAt)));
    await s3Proxy.restore();
    await timed('storage-outage: /readyz back', () =>
      waitFor(async () => (await fetch(`${direct}/readyz`)).status === 200, { timeoutMs: 30_000, intervalMs: 200, what: '/readyz 200' }),
    );
    await timed('storage-outage: uploads finish', () => Promise.all(uploads.map((u) => u.done)));
    link.throttle(null);

    // What the clients saw: retryable answers only, each resumed its own upload, nothing acknowledged lost.
    const failures = uploads.flatMap((u) => u.statuses).filter((s) => Number(s.split(' ')[1]) >= 400);
    console.log(`[reliability] storage-outage: client errors ${JSON.stringify(countBy(failures))}, ${uploads.reduce((n, u) => n + u.networkErrors, 0)} network errors`);
    expect(failures.filter((s) => !/ (503|409|423)$/.test(s)), 'only retryable errors').toEqual([]);
    // KNOWN ISSUE (reported, @tus/s3-store 2.0.7): a PATCH continuing an upload whose last bytes
    // sit in the incomplete part (<id>.part, chunks smaller than S3_PART_SIZE) downloads it,
    // DELETES it from S3, then uploads it again with the new bytes; S3 failing in between loses
    // bytes the client was told were stored, and HEAD goes back. tus-js-client still has them and
    // sends them again (the files below are byte-identical), but a client that discarded
    // acknowledged bytes could not. Only that path may regress; any other regression fails.
    const regressed = uploads.map((u, i) => ({ i, chunkSize: chunkSizes[i]!, regressions: u.regressions })).filter((u) => u.regressions.length > 0);
    if (regressed.length > 0) console.log(`[reliability] storage-outage KNOWN ISSUE: acknowledged offsets went back: ${JSON.stringify(regressed)}`);
    expect(regressed.filter((u) => u.chunkSize % (8 * MiB) === 0), 'offset regressions outside the incomplete-part path').toEqual([]);
    expect(uploads.map((u) => u.posts)).toEqual(uploads.map(() => 1));

    const ids = uploads.map((u) => idOf(u.url!));
    const records = await timed('storage-outage: processing', () => Promise.all(ids.map((id) => waitForFinal(direct, id, { timeoutMs: 90_000 }))));
    for (const [i, record] of records.entries()) {
      expect(record.status, `upload ${i}`).toBe('ready');
      expect(record.sha256).toBe(sha256(uploads[i]!.data));
      expect((await downloadSha256(direct, ids[i]!)).sha256).toBe(sha256(uploads[i]!.data));
    }
    const rows = await db.sql<{ id: string; status: string; filename: string; reserved_bytes: string }[]>`
      select id, status, filename, reserved_bytes from uploads`;
    const ours = new Set(ids);
    expect(rows.filter((r) => ours.has(r.id)).every((r) => r.status === 'ready')).toBe(true);
    // A creation refused because S3 was down (its record was made first, by onUploadCreate) leaves
    // no live record: it is marked deleted and its reservation is given back.
    const leftovers = rows.filter((r) => !ours.has(r.id));
    expect(leftovers.map((r) => r.filename).sort()).toEqual(['down.bin', 'down2.bin']);
    expect(leftovers.every((r) => r.status === 'deleted')).toBe(true);
    const owners = await db.sql<{ reserved_bytes: string; reserved_files: number }[]>`select reserved_bytes, reserved_files from owners`;
    for (const owner of owners) expect([Number(owner.reserved_bytes), owner.reserved_files]).toEqual([0, 0]);
    const blobs = await db.sql<{ storage_key: string }[]>`select storage_key from blobs`;
    const listed = await s3Client(motoEndpoint).send(new ListObjectsV2Command({ Bucket: env.S3_BUCKET! }));
    const objects = (listed.Contents ?? []).map((o) => o.Key!).filter((k) => !k.endsWith('.info') && !k.endsWith('.part'));
    expect(objects.sort()).toEqual(blobs.map((b) => b.storage_key).sort());
    expect(server.process.exitCode).toBeNull();
  });
});

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const value of values) out[value] = (out[value] ?? 0) + 1;
  return out;
}
