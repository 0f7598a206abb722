// linkBlob for many uploads in ONE statement: the small files finished inline together
// (tasks/steps/finish-inline.ts) link to their blobs, and those with nothing left to wait for
// become ready with their quota and audit entries, in one round trip and one set of row locks.
// The rules are linkBlob's (processing.ts), for the case it covers: no scanner, metadata known
// from the first bytes, one upload per blob in the statement. Anything else takes linkBlob.
import { sql } from 'drizzle-orm';
import type { Executor } from './tx.js';
import { JOBS, jobSpec } from './jobs.js';
import { hasPreviews, linkedResult, ownEarlierCopy, readyBookkeeping, readyOutcome, type ContentFacts, type LinkResult, type StepOptions } from './processing.js';

export interface LinkRequest {
  uploadId: string;
  /** With its metadata known (not null). */
  facts: ContentFacts;
}

/**
 * Links each upload (`processing`, not linked yet) to the blob of its bytes, as linkBlob does one.
 * Per request, in order: its LinkResult, or null when this statement did not link it (another
 * link or unlink of the blob committed since its snapshot, as linkBlob's guarded statement
 * detects; or the upload was not `processing` any more): the caller links that one with linkBlob.
 */
export async function linkBlobs(db: Executor, requests: readonly LinkRequest[], options: StepOptions): Promise<(LinkResult | null)[]> {
  if (options.scanner) throw new Error('linkBlobs covers content without a scanner only');
  if (new Set(requests.map((r) => r.facts.sha256)).size !== requests.length) throw new Error('linkBlobs takes one upload per blob');
  if (requests.some((r) => r.facts.metadata == null || r.facts.metadata.validationError !== null)) {
    throw new Error('linkBlobs takes content whose metadata is known and valid');
  }
  // Blob rows are taken in sha256 order, so two such statements cannot deadlock each other.
  const input = [...requests]
    .sort((a, b) => (a.facts.sha256 < b.facts.sha256 ? -1 : 1))
    .map(({ uploadId, facts }) => ({
      upload_id: uploadId,
      sha256: facts.sha256,
      md5: facts.md5,
      size: facts.size,
      kind: facts.kind,
      format: facts.format,
      mime_type: facts.mimeType,
      metadata: facts.metadata!.metadata,
      metadata_error: facts.metadata!.metadataError,
      previews: hasPreviews(facts.kind),
    }));
  const previewJob = jobSpec('make_previews', {
    payload: sql`json_build_object('sha256', linked.sha256)`,
    key: JOBS.make_previews.key.sql(sql`linked.sha256`),
    maxAttempts: options.maxAttempts,
  });
  const rows = await db.execute<{ id: string; inserted: boolean; ready: boolean; pending: boolean; owner_id: string; completed_at: string | null }>(sql`
    with input as (
      select * from jsonb_to_recordset(${JSON.stringify(input)}::jsonb) as x(
        upload_id text, sha256 text, md5 text, size bigint, kind text, format text, mime_type text, metadata jsonb,
        metadata_error text, previews boolean)
    ),
    target as (
      select u.id, u.storage_key, u.quota_state, u.reserved_bytes, u.size, i.sha256, i.md5, i.size as blob_size, i.kind,
             i.format, i.mime_type, i.metadata, i.metadata_error, i.previews
      from uploads u join input i on i.upload_id = u.id
      where u.status = 'processing' and u.blob_sha256 is null and u.storage_key is not null
      for update of u
    ),
    -- The blobs before this statement (its snapshot), to tell whether that snapshot is still current.
    before as (select sha256, ref_count from blobs where sha256 in (select sha256 from input)),
    blob as (
      insert into blobs (sha256, md5, size, storage_key, ref_count, kind, format, mime_type, scan_status,
                         metadata, metadata_error, validation_error, metadata_done)
      select sha256, md5, blob_size, storage_key, 1, kind, format, mime_type, 'skipped', metadata, metadata_error, null, true
      from target
      order by sha256
      on conflict (sha256) do update set ref_count = blobs.ref_count + 1
      -- Guarded as linkBlob's statement: only if no link or unlink committed since the snapshot.
      where blobs.ref_count = (select b.ref_count from before b where b.sha256 = excluded.sha256)
      returning sha256, (xmax = 0) as inserted, metadata_done, validation_error, scan_status, mime_type
    ),
    outcome as (
      select blob.sha256, blob.inserted, blob.mime_type, blob.scan_status,
             ${readyOutcome(sql.raw('blob'), options.scanRequired)} as ready,
             (not blob.metadata_done or blob.scan_status = 'pending') as pending
      from blob
    ),
    linked as (
      update uploads set
        sha256 = target.sha256, md5 = target.md5, blob_sha256 = target.sha256,
        deduplicated = not outcome.inserted and ${ownEarlierCopy(sql`target.sha256`)},
        storage_key = null, updated_at = now(),
        status = case when outcome.ready then 'ready' else uploads.status end,
        detected_mime_type = case when outcome.ready then outcome.mime_type else uploads.detected_mime_type end,
        scan_status = case when outcome.ready then outcome.scan_status else uploads.scan_status end,
        quota_state = case when outcome.ready and uploads.quota_state = 'reserved' then 'committed' else uploads.quota_state end,
        ready_at = case when outcome.ready then now() else uploads.ready_at end,
        finalized_at = case when outcome.ready then now() else uploads.finalized_at end
      from target join outcome on outcome.sha256 = target.sha256
      where uploads.id = target.id
      returning uploads.id, uploads.owner_id, uploads.filename, uploads.completed_at, outcome.inserted, outcome.ready,
                outcome.pending, target.quota_state as was, target.reserved_bytes, target.size, target.sha256, target.previews
    ),
    finalized as (select * from linked where ready),
    ${readyBookkeeping(sql`finalized.sha256`)},
    specs as (select array_agg(${previewJob}) as specs from linked where inserted and previews),
    jobs as (select job.id from specs, graphile_worker.add_jobs(specs.specs, false) job where specs.specs is not null)
    -- A CTE that only selects runs only if read: counting the jobs is what enqueues them.
    select linked.id, linked.inserted, linked.ready, linked.pending, linked.owner_id, linked.completed_at,
           (select count(*) from jobs)::int as jobs
    from linked`);
  const byId = new Map(rows.map((row) => [row.id, row]));
  return requests.map(({ uploadId }) => {
    const row = byId.get(uploadId);
    return row ? linkedResult(uploadId, row) : null;
  });
}
