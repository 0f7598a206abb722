// Admin analytics over time and the storage breakdowns the dashboard charts: one query per series,
// aggregated in PostgreSQL. Buckets are equal slices of the window, numbered from 0; every bucket
// is answered (zeros or nulls where nothing happened) so a chart's x axis has no gaps.
import { sql, type SQL } from 'drizzle-orm';
import type { Db } from './client.js';
import type { Window } from './analytics.js';

const num = (value: unknown) => Number(value ?? 0);
const roundedOrNull = (value: unknown) => (value === null || value === undefined ? null : Math.round(Number(value)));

export interface Buckets extends Window {
  count: number;
}

/** The bucket of a timestamp column within the window (0 … count-1), as SQL. */
const bucketOf = (column: SQL, buckets: Buckets) => {
  const start = buckets.start.getTime() / 1000;
  const seconds = (buckets.end.getTime() - buckets.start.getTime()) / 1000 / buckets.count;
  return sql`least(${buckets.count - 1}::int, floor((extract(epoch from ${column}) - ${start}::float8) / ${seconds}::float8)::int)`;
};

const range = (column: SQL, window: Window) =>
  sql`${column} >= ${window.start.toISOString()}::timestamptz and ${column} < ${window.end.toISOString()}::timestamptz`;

/**
 * Uploads created in each bucket (by the created_at index): all of them, those that became ready
 * or failed (rejected, infected, failed), the bytes stored, and the bytes de-duplication did not
 * store again: ready uploads whose content an earlier upload (any owner's) already holds. The
 * record's own `deduplicated` flag is not used: it only tells an owner about their own copies.
 */
export async function uploadSeries(db: Db, buckets: Buckets) {
  const createdAt = sql.raw('u.created_at');
  const rows = await db.execute<{ bucket: number; total: unknown; ready: unknown; failed: unknown; bytes: unknown; dedup_bytes: unknown }>(sql`
    with counted as (
      select ${bucketOf(createdAt, buckets)} as bucket,
             count(*) as total,
             count(*) filter (where u.status = 'ready') as ready,
             count(*) filter (where u.status in ('rejected', 'infected', 'failed')) as failed,
             coalesce(sum(u.size) filter (where u.status = 'ready'), 0) as bytes,
             coalesce(sum(u.size) filter (where u.status = 'ready' and exists (
               select 1 from uploads earlier
               where earlier.blob_sha256 = u.blob_sha256 and (earlier.created_at, earlier.id) < (u.created_at, u.id))), 0) as dedup_bytes
      from uploads u
      where ${range(createdAt, buckets)} and coalesce(u.upload_concat, '') <> 'partial'
      group by 1
    )
    select b.bucket, c.total, c.ready, c.failed, c.bytes, c.dedup_bytes
    from generate_series(0, ${buckets.count - 1}::int) as b(bucket) left join counted c using (bucket)
    order by b.bucket`);
  return rows.map((row) => {
    const succeeded = num(row.ready);
    const failed = num(row.failed);
    return {
      total: num(row.total),
      succeeded,
      failed,
      // Of the bucket's uploads that reached a verdict; none yet → null (no point drawn).
      successRate: succeeded + failed === 0 ? null : succeeded / (succeeded + failed),
      bytesStored: num(row.bytes),
      dedupBytes: num(row.dedup_bytes),
    };
  });
}

/**
 * Finish → ready latency of the files that became ready in each bucket (by the (status,
 * finalized_at) index; a ready file's finalized_at is its ready_at): median and 95th percentile, ms.
 */
export async function readyLatencySeries(db: Db, buckets: Buckets) {
  const finalizedAt = sql.raw('finalized_at');
  const rows = await db.execute<{ bucket: number; files: unknown; p50: unknown; p95: unknown }>(sql`
    with latencies as (
      select ${bucketOf(finalizedAt, buckets)} as bucket,
             extract(epoch from (ready_at - completed_at)) * 1000 as ms
      from uploads
      where status = 'ready' and ${range(finalizedAt, buckets)} and completed_at is not null and ready_at is not null
    ), measured as (
      select bucket, count(*) as files,
             percentile_cont(0.5) within group (order by ms) as p50,
             percentile_cont(0.95) within group (order by ms) as p95
      from latencies group by bucket
    )
    select b.bucket, m.files, m.p50, m.p95
    from generate_series(0, ${buckets.count - 1}::int) as b(bucket) left join measured m using (bucket)
    order by b.bucket`);
  return rows.map((row) => ({
    readyFiles: num(row.files),
    readyP50Ms: roundedOrNull(row.p50),
    readyP95Ms: roundedOrNull(row.p95),
  }));
}

/**
 * What is stored now (ready files), by kind: files, their bytes, and the bytes their distinct
 * content takes (shared content counted once; a file without a blob holds its own bytes).
 */
export async function storageByKind(db: Db) {
  const rows = await db.execute<{ kind: string; files: unknown; bytes: unknown; stored: unknown }>(sql`
    select kind, sum(files) as files, sum(bytes) as bytes, sum(stored) as stored
    from (
      select u.kind, count(*) as files, coalesce(sum(u.size), 0) as bytes,
             case when u.blob_sha256 is null then coalesce(sum(u.size), 0) else coalesce(max(b.size), 0) end as stored
      from uploads u left join blobs b on b.sha256 = u.blob_sha256
      where u.status = 'ready'
      group by u.kind, u.blob_sha256
    ) per_content
    group by kind order by bytes desc, kind`);
  return rows.map((row) => ({ kind: row.kind, files: num(row.files), bytes: num(row.bytes), storedBytes: num(row.stored) }));
}

/**
 * What is stored now, by owner, most bytes first: the quota's usage counters (the ready files each
 * owner is charged for), so this reads one row per owner rather than every file.
 */
export async function storageByOwner(db: Db, limit: number) {
  const rows = await db.execute<{ id: string; files: unknown; bytes: unknown }>(sql`
    select id, file_count as files, used_bytes as bytes
    from owners where used_bytes > 0 or file_count > 0
    order by used_bytes desc, id limit ${limit}`);
  return rows.map((row) => ({ ownerId: row.id, files: num(row.files), bytes: num(row.bytes) }));
}

/** Infected content and the files that carried it (the quarantine), newest first. */
export async function quarantineList(db: Db, limit: number) {
  const rows = await db.execute<{ id: string; owner_id: string; filename: string; size: unknown; signature: string | null; at: Date | string | null }>(sql`
    select u.id, u.owner_id, u.filename, u.size, b.scan_signature as signature, u.finalized_at as at
    from uploads u left join blobs b on b.sha256 = u.sha256
    where u.status = 'infected'
    order by u.finalized_at desc nulls last, u.id limit ${limit}`);
  return rows.map((row) => ({
    id: row.id,
    ownerId: row.owner_id,
    filename: row.filename,
    size: num(row.size),
    signature: row.signature,
    at: row.at === null ? null : new Date(row.at).toISOString(),
  }));
}
