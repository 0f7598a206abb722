// The previews of a blob's content: what exists, what failed and why, per (content, kind,
// options hash). Written by the make_previews task, read by the previews API.
import { and, desc, eq, isNull, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { addJob, JOBS } from './jobs.js';
import { blobs, previews, type PreviewRow } from './schema.js';
import type { Executor } from './tx.js';

export type NewPreview =
  | { sha256: string; kind: string; optionsHash: string; status: 'ready'; storageKey: string; contentType: string; size: number }
  | { sha256: string; kind: string; optionsHash: string; status: 'failed'; error: string };

/** The kinds already made (or given up on) for this content and option set. */
export async function previewKindsDone(db: Executor, sha256: string, optionsHash: string): Promise<Set<string>> {
  const rows = await db
    .select({ kind: previews.kind })
    .from(previews)
    .where(and(eq(previews.sha256, sha256), eq(previews.optionsHash, optionsHash)));
  return new Set(rows.map((row) => row.kind));
}

/** Records a preview once; a repeated job's second record is ignored. */
export async function savePreview(db: Executor, preview: NewPreview): Promise<void> {
  await db.insert(previews).values(preview).onConflictDoNothing();
}

/**
 * Writes metadata the previews step read (an image's header) to a blob that has none: content
 * stored before its kind's metadata existed. Never overwrites; true when it wrote.
 */
export async function fillMissingMetadata(db: Executor, sha256: string, metadata: Record<string, unknown>): Promise<boolean> {
  const rows = await db
    .update(blobs)
    .set({ metadata })
    .where(and(eq(blobs.sha256, sha256), isNull(blobs.metadata), eq(blobs.metadataDone, true)))
    .returning({ sha256: blobs.sha256 });
  return rows.length > 0;
}

/** The newest preview of each kind of this content (made with the options in force when it was). */
export async function latestPreviews(db: Executor, sha256: string): Promise<PreviewRow[]> {
  return db
    .selectDistinctOn([previews.kind])
    .from(previews)
    .where(eq(previews.sha256, sha256))
    .orderBy(previews.kind, desc(previews.createdAt));
}

/**
 * Enqueues the blob's previews once its metadata is known (audio needs its duration) and its
 * verdict lets it have any (clean, or skipped without a scanner): never for infected, pending or
 * unscannable content. Called by whichever step finishes last; the job is idempotent, so a
 * repeated step's second enqueue costs one cheap run.
 */
export async function enqueuePreviewsIfClean(db: Db, sha256: string, maxAttempts: number): Promise<void> {
  await db.execute(sql`
    select ${addJob('make_previews', { sha256 }, { maxAttempts })}
    from blobs where sha256 = ${sha256} and metadata_done and scan_status in ('clean', 'skipped')`);
}

/** The previews of one blob kind made with one option set (tasks/make-previews.ts PREVIEW_SETS). */
export interface PreviewSet {
  blobKind: string;
  optionsHash: string;
  kinds: readonly string[];
}

export interface BackfillBatch {
  /** Blobs looked at in this batch (the page), and the last one's sha256: where the next starts. */
  scanned: number;
  last: string | null;
  /** Of those, the ones lacking a preview of the current option set: each got a make_previews job. */
  missing: string[];
  /**
   * With `retryFailed`: the ones with a preview of the current option set recorded `failed`; those
   * records were removed and each got a make_previews job (a blob may be in both lists).
   */
  failed: string[];
}

/**
 * One bounded batch of the previews backfill: the next `batch` blobs after `after` (by sha256)
 * that may have previews (metadata known, verdict clean or skipped, still referenced, not in the
 * archive tier, which needs a restore to be read) get a make_previews job when a kind of the
 * current option set has no record yet. Idempotent: the job key keeps one job per blob, and the
 * job makes only what is missing. `retryFailed` also re-renders what the current option set
 * recorded as `failed` (e.g. while ffmpeg was off or missing): those records go, so the job makes
 * them again. `dryRun` enqueues and removes nothing.
 */
export async function backfillPreviewsBatch(
  db: Executor,
  sets: readonly PreviewSet[],
  options: { after: string; batch: number; maxAttempts: number; dryRun: boolean; retryFailed?: boolean },
): Promise<BackfillBatch> {
  if (sets.length === 0) return { scanned: 0, last: null, missing: [], failed: [] };
  const plans = sql.join(
    sets.map((set) => sql`(${set.blobKind}::text, ${set.optionsHash}::text, ${set.kinds.length}::int)`),
    sql`, `,
  );
  const [row] = await db.execute<{ scanned: number; last: string | null; missing: string[]; failed: string[] }>(sql`
    with plan(kind, options_hash, kinds) as (values ${plans}),
    page as (
      select b.sha256, b.kind from blobs b
      where b.sha256 > ${options.after} and b.kind in (select kind from plan)
        and b.metadata_done and b.validation_error is null and b.scan_status in ('clean', 'skipped')
        and b.ref_count > 0 and b.storage_tier <> 'archive'
      order by b.sha256
      limit ${options.batch}
    ),
    missing as (
      select page.sha256 from page join plan using (kind)
      where (select count(*) from previews p where p.sha256 = page.sha256 and p.options_hash = plan.options_hash) < plan.kinds
    ),
    failed as (
      select page.sha256, plan.options_hash from page join plan using (kind)
      where ${options.retryFailed ?? false}::boolean
        and exists (select 1 from previews p where p.sha256 = page.sha256 and p.options_hash = plan.options_hash and p.status = 'failed')
    ),
    -- A deleting CTE runs whether read or not; failed records have no stored object to remove.
    cleared as (
      delete from previews p using failed
      where p.sha256 = failed.sha256 and p.options_hash = failed.options_hash and p.status = 'failed'
        and not ${options.dryRun}::boolean
    ),
    due as (select sha256 from missing union select sha256 from failed),
    jobs as (
      select graphile_worker.add_job(
        identifier := 'make_previews'::text,
        payload := json_build_object('sha256', due.sha256),
        max_attempts := ${options.maxAttempts}::int,
        job_key := ${JOBS.make_previews.key.sql(sql`due.sha256`)}
      ) from due where not ${options.dryRun}::boolean
    )
    -- A CTE that only selects runs only if read: counting the jobs is what enqueues them.
    select (select count(*) from page)::int as scanned, (select max(sha256) from page) as last,
           coalesce((select array_agg(sha256 order by sha256) from missing), '{}') as missing,
           coalesce((select array_agg(sha256 order by sha256) from failed), '{}') as failed,
           (select count(*) from jobs)::int as enqueued`);
  return { scanned: row?.scanned ?? 0, last: row?.last ?? null, missing: row?.missing ?? [], failed: row?.failed ?? [] };
}
