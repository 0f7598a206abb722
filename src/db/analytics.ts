// Admin analytics, computed in PostgreSQL. Each query filters on an indexed column first
// (uploads.created_at, uploads(status, finalized_at), blobs(ref_count > 1)) so they stay fast at
// a million uploads; aggregation happens in the database, never in JavaScript.
import { sql } from 'drizzle-orm';
import type { Db } from './client.js';

export interface Window {
  start: Date;
  end: Date;
}

const num = (value: unknown) => Number(value ?? 0);

/**
 * One pass over the window's uploads (by the created_at index), every breakdown at once with
 * GROUPING SETS; the content's MIME type and scan verdict are read from the upload row, where
 * finalisation copied them, so no join with blobs is needed.
 */
export async function uploadAnalytics(db: Db, window: Window) {
  const rows = await db.execute<{
    status: string | null;
    kind: string | null;
    mime: string | null;
    scan: string | null;
    g_status: number;
    g_kind: number;
    g_mime: number;
    g_scan: number;
    count: unknown;
    bytes: unknown;
    ready: unknown;
    ready_bytes: unknown;
    failed: unknown;
    in_progress: unknown;
  }>(sql`
    select status, kind, coalesce(detected_mime_type, mime_type, 'application/octet-stream') as mime,
           coalesce(scan_status, 'pending') as scan,
           grouping(status) as g_status, grouping(kind) as g_kind,
           grouping(coalesce(detected_mime_type, mime_type, 'application/octet-stream')) as g_mime,
           grouping(coalesce(scan_status, 'pending')) as g_scan,
           count(*) as count, coalesce(sum(size), 0) as bytes,
           count(*) filter (where status = 'ready') as ready,
           coalesce(sum(size) filter (where status = 'ready'), 0) as ready_bytes,
           count(*) filter (where status in ('rejected', 'infected', 'failed')) as failed,
           count(*) filter (where status in ('uploading', 'processing')) as in_progress
    from uploads
    where created_at >= ${window.start.toISOString()}::timestamptz and created_at < ${window.end.toISOString()}::timestamptz
      and coalesce(upload_concat, '') <> 'partial'
    group by grouping sets ((status), (kind), (coalesce(detected_mime_type, mime_type, 'application/octet-stream')),
                            (coalesce(scan_status, 'pending')), ())`);
  const only = (set: 'status' | 'kind' | 'mime' | 'scan' | 'all') =>
    rows.filter((row) => {
      const flags = { status: num(row.g_status), kind: num(row.g_kind), mime: num(row.g_mime), scan: num(row.g_scan) };
      if (set === 'all') return flags.status && flags.kind && flags.mime && flags.scan;
      return !flags[set] && Object.entries(flags).every(([name, value]) => name === set || value === 1);
    });
  const totals = only('all')[0];
  const total = num(totals?.count);
  const succeeded = num(totals?.ready);
  const failed = num(totals?.failed);
  const finished = succeeded + failed;
  // Verdicts of files that reached one (uploads still in flight have none yet).
  const scanCount = (status: string) => num(only('scan').find((row) => row.scan === status)?.count);
  return {
    start: window.start.toISOString(),
    end: window.end.toISOString(),
    total,
    succeeded,
    failed,
    inProgress: num(totals?.in_progress),
    // Of the uploads that reached a verdict; in-progress ones are not counted either way.
    successRate: finished === 0 ? null : succeeded / finished,
    averageSize: succeeded === 0 ? null : Math.round(num(totals?.ready_bytes) / succeeded),
    bytesStored: num(totals?.ready_bytes),
    byStatus: Object.fromEntries(only('status').map((row) => [row.status!, num(row.count)])),
    byMimeType: only('mime')
      .map((row) => ({ mimeType: row.mime!, count: num(row.count), bytes: num(row.bytes) }))
      .sort((a, b) => b.count - a.count || a.mimeType.localeCompare(b.mimeType)),
    byKind: only('kind')
      .map((row) => ({ kind: row.kind!, count: num(row.count), bytes: num(row.bytes) }))
      .sort((a, b) => a.kind.localeCompare(b.kind)),
    scans: {
      clean: scanCount('clean'),
      infected: scanCount('infected'),
      failed: scanCount('error'),
      skipped: scanCount('skipped'),
      pending: scanCount('pending'),
    },
  };
}

export async function queueAnalytics(db: Db) {
  const jobs = await db.execute<{ task: string; pending: unknown; running: unknown; retrying: unknown; failed: unknown }>(sql`
    select task_identifier as task,
           count(*) filter (where locked_at is null and attempts = 0 and run_at <= now()) as pending,
           count(*) filter (where locked_at is not null) as running,
           count(*) filter (where locked_at is null and attempts > 0 and attempts < max_attempts) as retrying,
           count(*) filter (where attempts >= max_attempts and locked_at is null) as failed
    from graphile_worker.jobs
    group by task_identifier order by task_identifier`);
  const failedJobs = await db.execute<{ id: unknown; task: string; attempts: unknown; last_error: string | null; key: string | null; updated_at: Date }>(sql`
    select id, task_identifier as task, attempts, last_error, key, updated_at
    from graphile_worker.jobs where attempts >= max_attempts and locked_at is null
    order by updated_at desc limit 50`);
  const [processing] = await db.execute<{ count: unknown }>(sql`select count(*) as count from uploads where status = 'processing'`);
  const steps = Object.fromEntries(
    jobs.map((row) => [row.task, { pending: num(row.pending), running: num(row.running), retrying: num(row.retrying), failed: num(row.failed) }]),
  );
  const sum = (field: 'pending' | 'running' | 'retrying' | 'failed') => Object.values(steps).reduce((a, s) => a + s[field], 0);
  return {
    pending: sum('pending'),
    running: sum('running'),
    retrying: sum('retrying'),
    failed: sum('failed'),
    uploadsProcessing: num(processing?.count),
    byStep: steps,
    failedJobs: failedJobs.map((job) => ({
      id: String(job.id),
      task: job.task,
      attempts: num(job.attempts),
      key: job.key,
      lastError: job.last_error,
      at: new Date(job.updated_at).toISOString(),
    })),
  };
}

export async function failureAnalytics(db: Db, window: Window) {
  const rows = await db.execute<{ status: string; reason: string | null; count: unknown; last_at: Date }>(sql`
    select status, coalesce(rejection_reason, failure_reason, 'unknown') as reason, count(*) as count, max(finalized_at) as last_at
    from uploads
    where status in ('rejected', 'infected', 'failed')
      and finalized_at >= ${window.start.toISOString()}::timestamptz and finalized_at < ${window.end.toISOString()}::timestamptz
    group by 1, 2 order by count(*) desc, 2 limit 100`);
  const byStatus: Record<string, number> = {};
  for (const row of rows) byStatus[row.status] = (byStatus[row.status] ?? 0) + num(row.count);
  return {
    start: window.start.toISOString(),
    end: window.end.toISOString(),
    total: Object.values(byStatus).reduce((a, b) => a + b, 0),
    byStatus,
    reasons: rows.map((row) => ({ status: row.status, reason: row.reason ?? 'unknown', count: num(row.count), lastAt: new Date(row.last_at).toISOString() })),
  };
}

export async function topUploaders(db: Db, window: Window, limit: number) {
  const rows = await db.execute<{ owner_id: string; uploads: unknown; ready: unknown; bytes: unknown }>(sql`
    select owner_id, count(*) as uploads, count(*) filter (where status = 'ready') as ready,
           coalesce(sum(size) filter (where status = 'ready'), 0) as bytes
    from uploads
    where created_at >= ${window.start.toISOString()}::timestamptz and created_at < ${window.end.toISOString()}::timestamptz
    group by owner_id order by bytes desc, uploads desc, owner_id limit ${limit}`);
  return {
    start: window.start.toISOString(),
    end: window.end.toISOString(),
    owners: rows.map((row) => ({ ownerId: row.owner_id, uploads: num(row.uploads), readyFiles: num(row.ready), bytes: num(row.bytes) })),
  };
}

export async function duplicateGroups(db: Db, limit: number) {
  const [totals] = await db.execute<{ groups: unknown; saved: unknown; references: unknown }>(sql`
    select count(*) as groups, coalesce(sum((ref_count - 1) * size), 0) as saved, coalesce(sum(ref_count), 0) as references
    from blobs where ref_count > 1`);
  const groups = await db.execute<{ sha256: string; size: unknown; ref_count: unknown; kind: string; filenames: string[] }>(sql`
    select b.sha256, b.size, b.ref_count, b.kind,
           (select array_agg(distinct u.filename) from (select filename from uploads where blob_sha256 = b.sha256 limit 10) u) as filenames
    from blobs b where b.ref_count > 1
    order by (b.ref_count - 1) * b.size desc, b.sha256 limit ${limit}`);
  return {
    groups: num(totals?.groups),
    duplicateReferences: num(totals?.references) - num(totals?.groups),
    bytesSaved: num(totals?.saved),
    top: groups.map((g) => ({
      sha256: g.sha256,
      size: num(g.size),
      references: num(g.ref_count),
      bytesSaved: (num(g.ref_count) - 1) * num(g.size),
      kind: g.kind,
      filenames: g.filenames ?? [],
    })),
  };
}
