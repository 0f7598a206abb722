// The dashboard's series and breakdowns (GET /api/admin/analytics/series, /storage, /quarantine)
// against a known data set: real uploads through the real server (AUTH_MODE=jwt, PostgreSQL, disk,
// the test clamd), then their timestamps moved to known instants so every bucket, rate and
// percentile can be stated exactly.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitForFinal, type FileRecord } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { eicar } from '../support/clamd.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildPng } from '../support/fixture-builders.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';
import { upload } from '../support/tus.js';

interface Bucket {
  start: string;
  total: number;
  succeeded: number;
  failed: number;
  successRate: number | null;
  bytesStored: number;
  dedupBytes: number;
  readyFiles: number;
  readyP50Ms: number | null;
  readyP95Ms: number | null;
}

describe('admin analytics: series, storage, quarantine', () => {
  let db: TestDatabase;
  let server: TestServer;
  let admin: Record<string, string>;
  const files: Record<string, FileRecord> = {};
  const shared = randomBytes(20_000);
  const start = new Date('2026-03-01T00:00:00Z');
  const hour = 3_600_000;
  const at = (hours: number, ms = 0) => new Date(start.getTime() + hours * hour + ms).toISOString();

  const send = async (name: string, data: Buffer, owner: string, filename = `${name}.bin`) => {
    const headers = await bearer(owner);
    files[name] = await waitForFinal(server.url, await upload(data, { endpoint: `${server.url}/files`, filename, headers }), { headers });
  };
  /** Created at +createdHours, finished 1 s later, ready latencyMs after that. */
  const place = (name: string, createdHours: number, latencyMs: number) => db.sql`
    update uploads set created_at = ${at(createdHours)}, completed_at = ${at(createdHours, 1000)},
      ready_at = case when status = 'ready' then ${at(createdHours, 1000 + latencyMs)}::timestamptz end,
      finalized_at = ${at(createdHours, 1000 + latencyMs)}
    where id = ${files[name]!.id}`;
  const get = async <T>(path: string, headers = admin): Promise<T> => {
    const response = await fetch(`${server.url}${path}`, { headers });
    expect(response.status, path).toBe(200);
    return (await response.json()) as T;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startServer(
      await serverEnv({
        databaseUrl: db.url,
        storage: 'file',
        extra: jwtEnv({ CLAMAV_HOST: inject('clamdHost'), CLAMAV_PORT: String(inject('clamdPort')), ALLOWED_KINDS: 'fseq,xsq,audio,video,image,other' }),
      }),
    );
    admin = await bearer('ops', { role: 'admin' });
    await send('a1', randomBytes(10_000), 'alice');
    await send('a2', shared, 'alice');
    await send('b1', shared, 'bob'); // the same bytes: de-duplicated
    await send('b2', buildPng(), 'bob', 'not-a-sequence.fseq'); // rejected: a PNG named .fseq
    await send('b3', eicar(), 'bob'); // infected
    expect(Object.fromEntries(Object.entries(files).map(([name, file]) => [name, file.status]))).toEqual({
      a1: 'ready',
      a2: 'ready',
      b1: 'ready',
      b2: 'rejected',
      b3: 'infected',
    });
    // Bucket 0 (hour 0): a1 ready after 1 s, a2 after 3 s, b2 rejected. Bucket 2: b1 after 5 s, b3 infected.
    await place('a1', 0.1, 1000);
    await place('a2', 0.2, 3000);
    await place('b2', 0.3, 500);
    await place('b1', 2.5, 5000);
    await place('b3', 2.6, 700);
  });

  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('cuts a window into buckets: uploads, success rate, bytes, de-duplication savings, finish → ready p50/p95', async () => {
    const series = await get<{ start: string; end: string; bucketSeconds: number; buckets: Bucket[] }>(
      `/api/admin/analytics/series?start=${at(0)}&end=${at(4)}&buckets=4`,
    );
    expect(series.bucketSeconds).toBe(3600);
    expect(series.buckets.map((b) => b.start)).toEqual([at(0), at(1), at(2), at(3)]);
    const [first, empty, third, last] = series.buckets;
    expect(first).toMatchObject({ total: 3, succeeded: 2, failed: 1, bytesStored: 10_000 + shared.length, readyFiles: 2 });
    expect(first!.successRate).toBeCloseTo(2 / 3, 10);
    // percentile_cont over 1000 and 3000 ms.
    expect(first!.readyP50Ms).toBe(2000);
    expect(first!.readyP95Ms).toBe(2900);
    expect(empty).toMatchObject({ total: 0, succeeded: 0, failed: 0, successRate: null, bytesStored: 0, dedupBytes: 0, readyFiles: 0, readyP50Ms: null, readyP95Ms: null });
    // b1 holds the bytes a2 (another owner's, earlier) already stored: not stored twice.
    expect(third).toMatchObject({ total: 2, succeeded: 1, failed: 1, successRate: 0.5, bytesStored: shared.length, dedupBytes: shared.length });
    expect(third).toMatchObject({ readyFiles: 1, readyP50Ms: 5000, readyP95Ms: 5000 });
    expect(first!.dedupBytes).toBe(0);
    expect(last).toMatchObject({ total: 0, readyFiles: 0 });
    // The series agree with the window's totals.
    const totals = await get<{ total: number; succeeded: number; failed: number; bytesStored: number }>(`/api/admin/analytics/uploads?start=${at(0)}&end=${at(4)}`);
    const sum = (field: 'total' | 'succeeded' | 'failed' | 'bytesStored') => series.buckets.reduce((a, b) => a + b[field], 0);
    expect({ total: sum('total'), succeeded: sum('succeeded'), failed: sum('failed'), bytesStored: sum('bytesStored') }).toEqual({
      total: totals.total,
      succeeded: totals.succeeded,
      failed: totals.failed,
      bytesStored: totals.bytesStored,
    });
  });

  it('breaks down what is stored now by kind (shared content once) and by owner', async () => {
    const storage = await get<{
      byKind: Array<{ kind: string; files: number; bytes: number; storedBytes: number }>;
      byOwner: Array<{ ownerId: string; files: number; bytes: number }>;
    }>('/api/admin/analytics/storage');
    expect(storage.byKind).toEqual([{ kind: 'other', files: 3, bytes: 10_000 + 2 * shared.length, storedBytes: 10_000 + shared.length }]);
    expect(storage.byOwner).toEqual([
      { ownerId: 'alice', files: 2, bytes: 10_000 + shared.length },
      { ownerId: 'bob', files: 1, bytes: shared.length },
    ]);
    // By owner is what each owner's quota is charged.
    for (const { ownerId, files: count, bytes } of storage.byOwner) {
      expect(await get(`/api/me/quota`, await bearer(ownerId))).toMatchObject({ usedBytes: bytes, fileCount: count });
    }
    const one = await get<{ byOwner: unknown[] }>('/api/admin/analytics/storage?limit=1');
    expect(one.byOwner).toHaveLength(1);
  });

  it('lists the quarantine with the signature clamd found', async () => {
    const { files: quarantined } = await get<{ files: Array<{ id: string; ownerId: string; signature: string | null; size: number; at: string }> }>(
      '/api/admin/analytics/quarantine',
    );
    expect(quarantined).toEqual([{ id: files.b3!.id, ownerId: 'bob', filename: 'b3.bin', size: eicar().length, signature: expect.stringMatching(/eicar/i), at: at(2.6, 1700) }]);
  });

  it('answers admins only, and refuses bad parameters with 400', async () => {
    for (const path of ['/api/admin/analytics/series', '/api/admin/analytics/storage', '/api/admin/analytics/quarantine']) {
      const response = await fetch(`${server.url}${path}`, { headers: await bearer('alice') });
      expect(response.status, path).toBe(403);
    }
    for (const [query, code] of [
      ['buckets=0', 'VALIDATION_ERROR'],
      ['buckets=201', 'VALIDATION_ERROR'],
      ['buckets=abc', 'VALIDATION_ERROR'],
      [`start=${at(4)}&end=${at(0)}`, 'INVALID_RANGE'],
      ['start=2020-01-01&end=2026-01-01', 'INVALID_RANGE'],
    ] as const) {
      const response = await fetch(`${server.url}/api/admin/analytics/series?${query}`, { headers: admin });
      expect(response.status, query).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code, query).toBe(code);
    }
    const response = await fetch(`${server.url}/api/admin/analytics/storage?limit=0`, { headers: admin });
    expect(response.status).toBe(400);
  });

  it('documents the routes in the OpenAPI document', async () => {
    const document = (await (await fetch(`${server.url}/docs/json`)).json()) as { paths: Record<string, Record<string, { responses?: object }>> };
    for (const path of ['/api/admin/analytics/series', '/api/admin/analytics/storage', '/api/admin/analytics/quarantine']) {
      expect(Object.keys(document.paths), path).toContain(path);
      expect(Object.keys(document.paths[path]!.get!.responses ?? {})).toEqual(expect.arrayContaining(['200', '400', '403']));
    }
  });
});
