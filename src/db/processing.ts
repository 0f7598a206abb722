// The processing state machine, as database transitions. Every transition is guarded by the state
// it starts from (`status = 'processing'`, `blob_sha256 is null`, ...) inside a transaction that
// locks the rows it reads, so a job that runs twice, or two jobs racing, apply it exactly once.
//
//   process_upload:  digest → reject (bytes are not the declared kind) | link to blob (dedup)
//   blob steps:      extract_metadata, scan_blob (enqueued when a blob is first created)
//   finalizeBlob:    when every step of a blob is done, all its `processing` uploads get their
//                    final status, their quota committed or released, and an audit entry.
import { and, eq, sql, type SQL } from 'drizzle-orm';
import type { Kind } from '../config/index.js';
import { audit, AUDIT } from './audit.js';
import type { Db } from './client.js';
import { addJob, isPreviewed } from './jobs.js';
import { releaseQuota } from './quota.js';
import { blobs, uploads, type BlobRow, type ScanStatus, type UploadStatus } from './schema.js';
import type { Executor, Tx } from './tx.js';

export interface ContentFacts {
  sha256: string;
  md5: string;
  size: number;
  kind: Kind;
  format: string | null;
  mimeType: string | null;
  /** Metadata already known (from the first bytes): stored with a new blob, no job needed. */
  metadata?: MetadataOutcome | null;
}

export interface StepOptions {
  /** A scanner is configured: new blobs wait for a verdict. */
  scanner: boolean;
  /** SCAN_REQUIRED: no file becomes ready without a clean verdict. */
  scanRequired: boolean;
  maxAttempts: number;
}

export interface FinalizedUpload {
  id: string;
  ownerId: string;
  status: UploadStatus;
  /** When the last byte arrived (for the finish-to-final latency). */
  completedAt: Date | null;
}

/** The bytes are not what the upload declared: rejected before any blob is made of them. */
export async function rejectUpload(
  db: Executor,
  uploadId: string,
  reason: string,
  content: { sha256: string; md5: string; detectedMimeType: string | null } | null,
): Promise<FinalizedUpload | null> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .update(uploads)
      .set({
        status: 'rejected',
        rejectionReason: reason,
        // Rejected before a blob was made of these bytes: never scanned.
        scanStatus: 'skipped',
        ...(content ?? {}),
        finalizedAt: sql`now()`,
        updatedAt: sql`now()`,
      })
      .where(and(eq(uploads.id, uploadId), eq(uploads.status, 'processing')))
      .returning({ id: uploads.id, ownerId: uploads.ownerId, completedAt: uploads.completedAt });
    if (!row) return null;
    await releaseQuota(tx, uploadId);
    await audit(tx, {
      action: AUDIT.rejected,
      ownerId: row.ownerId,
      uploadId,
      details: { reason },
      dedupeKey: `rejected:${uploadId}`,
    });
    return { ...row, status: 'rejected' as const };
  });
}

export interface LinkResult {
  /** False when the upload was already linked or is no longer processing (a repeated job). */
  linked: boolean;
  /**
   * The blob existed already, whoever's it is: this upload's own copy of the bytes goes. (The
   * record's `deduplicated`, which its owner sees, is true only for the owner's own earlier copy.)
   */
  deduplicated: boolean;
  /** The upload, when the blob had nothing left to wait for and it became ready in the same statement. */
  ready: FinalizedUpload | null;
  /** One of the blob's steps is still to run: its completion finalizes this upload. */
  stepsPending: boolean;
}

/**
 * Content de-duplication: the upload takes a reference on the blob of its bytes, creating it if
 * these bytes are new, and the new blob's steps are enqueued — one statement, so one round trip
 * and atomic. Two identical uploads finishing at the same instant serialise on the blob's primary
 * key (the upsert), so exactly one creates the blob and the other references it.
 *
 * When the blob, as the upsert leaves it (locked, latest version), has every step done and a
 * `ready` outcome — new bytes whose metadata came from their first bytes with no scanner, or a
 * duplicate of processed bytes — the upload becomes ready in this same statement, with its quota
 * and audit entry, as finalizeBlob would have done one round trip later. Otherwise it stays
 * `processing`: a pending step finalizes it when it completes (it updates the blob row, so it
 * waits for this statement's lock and then sees this upload), and any other outcome is the
 * caller's to finalize.
 *
 * The record's `deduplicated` tells the owner that the bytes were already theirs: true only when
 * another live upload of the same owner references the blob (that another owner has the same
 * bytes stays internal). The statement reads the owner's uploads in its snapshot, which is exact
 * only if no other link or unlink of the blob committed between the snapshot and the blob's
 * lock; the upsert checks that (the blob's ref_count is still the one in the snapshot) and
 * otherwise changes nothing, and the link is made again in a transaction that keeps the blob
 * locked until the owner's earlier copies are counted with a fresh snapshot. So the common case
 * stays one round trip, and identical uploads racing each other still get exactly one original
 * per owner.
 */
export async function linkBlob(db: Executor, uploadId: string, facts: ContentFacts, options: StepOptions): Promise<LinkResult> {
  const optimistic = await linkStatement(db, uploadId, facts, options, true);
  if (optimistic !== 'contended') return optimistic;
  return db.transaction(async (tx) => {
    const result = await linkStatement(tx, uploadId, facts, options, false);
    if (result === 'contended') throw new Error('unreachable: an unguarded link is never contended');
    if (result.linked && result.deduplicated) {
      // Every earlier link of these bytes has committed (each held the blob until then) and no
      // later one can happen before this transaction ends: this snapshot sees exactly them.
      await tx.execute(sql`
        update uploads set deduplicated = ${ownEarlierCopy(facts.sha256)}
        where id = ${uploadId} and blob_sha256 = ${facts.sha256}`);
    }
    return result;
  });
}

/** Content of this kind gets previews (a make_previews job for any other kind would do nothing). */
export const hasPreviews = (kind: Kind): boolean => isPreviewed(kind);

/** Another live upload of this upload's owner references the blob (in the statement's snapshot). */
export function ownEarlierCopy(sha256: string | SQL): SQL {
  return sql`exists (select 1 from uploads own where own.blob_sha256 = ${sha256}
                     and own.owner_id = uploads.owner_id and own.id <> uploads.id)`;
}

async function linkStatement(
  db: Executor,
  uploadId: string,
  facts: ContentFacts,
  options: StepOptions,
  guarded: boolean,
): Promise<LinkResult | 'contended'> {
  const initialScan: ScanStatus = options.scanner ? 'pending' : 'skipped';
  const payload = { sha256: facts.sha256 };
  // A verdict that is missing (no scanner back then) or failed (scanner down) is not reused by a
  // duplicate: these bytes are scanned again.
  const rescan = sql`${options.scanner} and blobs.scan_status in ('error', 'skipped')`;
  const [row] = await db.execute<{
    inserted: boolean | null;
    ready: boolean;
    pending: boolean;
    owner_id: string;
    completed_at: string | null;
    jobs: number;
    targeted: number;
  }>(sql`
    with target as (
      select id, storage_key, quota_state, reserved_bytes, size from uploads
      where id = ${uploadId} and status = 'processing' and blob_sha256 is null and storage_key is not null
      for update
    ),
    -- The blob before this statement (in its snapshot): whether this duplicate asks for a new
    -- scan, and its reference count, to tell whether the snapshot is still current.
    before as (select scan_status, ref_count from blobs where sha256 = ${facts.sha256}),
    blob as (
      insert into blobs (sha256, md5, size, storage_key, ref_count, kind, format, mime_type, scan_status,
                         metadata, metadata_error, validation_error, metadata_done)
      select ${facts.sha256}, ${facts.md5}, ${facts.size}, target.storage_key, 1, ${facts.kind}, ${facts.format},
             ${facts.mimeType}, ${initialScan}, ${facts.metadata?.metadata ? JSON.stringify(facts.metadata.metadata) : null}::jsonb,
             ${facts.metadata?.metadataError ?? null}, ${facts.metadata?.validationError ?? null}, ${facts.metadata != null}
      from target
      on conflict (sha256) do update set
        ref_count = blobs.ref_count + 1,
        scan_status = case when ${rescan} then 'pending' else blobs.scan_status end,
        scan_signature = case when ${rescan} then null else blobs.scan_signature end,
        scan_error = case when ${rescan} then null else blobs.scan_error end
      -- Guarded: only if no link or unlink of the blob committed since this statement's snapshot
      -- (otherwise nothing changes, and linkBlob links again in a transaction).
      where not ${guarded}::boolean or blobs.ref_count = (select ref_count from before)
      returning (xmax = 0) as inserted, metadata_done, validation_error, scan_status, mime_type
    ),
    outcome as (
      select blob.inserted, blob.mime_type, blob.scan_status,
             ${readyOutcome(sql.raw('blob'), options.scanRequired)} as ready,
             (not blob.metadata_done or blob.scan_status = 'pending') as pending
      from blob
    ),
    steps as (
      select ${addJob('extract_metadata', payload, { maxAttempts: options.maxAttempts })} from blob
      where blob.inserted and ${facts.metadata == null}
      union all
      select ${addJob('scan_blob', payload, { maxAttempts: options.maxAttempts })} from blob
      where ${options.scanner} and (blob.inserted or exists (select 1 from before where scan_status in ('error', 'skipped')))
      union all
      -- New bytes with no scanner and known metadata: previews now (else scan_blob or extract_metadata enqueues them).
      select ${addJob('make_previews', payload, { maxAttempts: options.maxAttempts })} from blob
      where blob.inserted and not ${options.scanner} and blob.metadata_done and ${hasPreviews(facts.kind)}
    ),
    linked as (
      update uploads set
        sha256 = ${facts.sha256}, md5 = ${facts.md5}, blob_sha256 = ${facts.sha256},
        -- Seen by the owner: their own earlier copy only, never another owner's (see linkBlob).
        deduplicated = not outcome.inserted and ${ownEarlierCopy(facts.sha256)},
        -- The bytes now belong to the blob (the first upload's object becomes the blob's).
        storage_key = null, updated_at = now(),
        -- Nothing left to wait for: ready now (what markReadyIfDone does for a blob's uploads).
        status = case when outcome.ready then 'ready' else uploads.status end,
        detected_mime_type = case when outcome.ready then outcome.mime_type else uploads.detected_mime_type end,
        scan_status = case when outcome.ready then outcome.scan_status else uploads.scan_status end,
        quota_state = case when outcome.ready and uploads.quota_state = 'reserved' then 'committed' else uploads.quota_state end,
        ready_at = case when outcome.ready then now() else uploads.ready_at end,
        finalized_at = case when outcome.ready then now() else uploads.finalized_at end
      from outcome, target
      where uploads.id = target.id
      returning uploads.id, uploads.owner_id, uploads.filename, uploads.completed_at, outcome.inserted, outcome.ready,
                outcome.pending, target.quota_state as was, target.reserved_bytes, target.size
    ),
    finalized as (select * from linked where ready),
    ${readyBookkeeping(facts.sha256)}
    -- A CTE that only selects runs only if read: counting the jobs is what enqueues them.
    select linked.inserted, linked.ready, linked.pending, linked.owner_id, linked.completed_at,
           (select count(*) from steps)::int as jobs, (select count(*) from target)::int as targeted
    from (select 1) one left join linked on true`);
  if (!row || row.inserted === null) {
    // The upload was ready to link but the guarded upsert left the blob alone: contended.
    if (row && row.targeted > 0) return 'contended';
    return { linked: false, deduplicated: false, ready: null, stepsPending: false };
  }
  return linkedResult(uploadId, { ...row, inserted: row.inserted });
}

/** What a link statement's row says of the upload it linked (linkBlob's and linkBlobs' own). */
export function linkedResult(
  uploadId: string,
  row: { inserted: boolean; ready: boolean; pending: boolean; owner_id: string; completed_at: string | Date | null },
): LinkResult {
  return {
    linked: true,
    deduplicated: !row.inserted,
    ready: row.ready
      ? { id: uploadId, ownerId: row.owner_id, status: 'ready', completedAt: row.completed_at === null ? null : new Date(row.completed_at) }
      : null,
    stepsPending: row.pending,
  };
}

export interface MetadataOutcome {
  metadata: Record<string, unknown> | null;
  /** The content is invalid for its kind (lying header, not an xLights file, ...): rejected. */
  validationError: string | null;
  /** Extraction failed for another reason: recorded, the file stays usable. */
  metadataError: string | null;
}

export async function saveMetadata(db: Executor, sha256: string, outcome: MetadataOutcome): Promise<void> {
  await db
    .update(blobs)
    .set({
      metadata: outcome.metadata,
      validationError: outcome.validationError,
      metadataError: outcome.metadataError,
      metadataDone: true,
    })
    .where(and(eq(blobs.sha256, sha256), eq(blobs.metadataDone, false)));
}

export interface ScanOutcome {
  status: Exclude<ScanStatus, 'pending' | 'infected'>;
  signature: string | null;
  /** Why there is no verdict (status `error`). */
  error?: string | null;
}

/** A verdict other than infected (those go through saveInfected). Applied once: guarded by `pending`. */
export async function saveScan(db: Executor, sha256: string, outcome: ScanOutcome): Promise<void> {
  await db
    .update(blobs)
    .set({
      scanStatus: outcome.status,
      scanSignature: outcome.signature,
      scanError: outcome.error ?? null,
      scannedAt: sql`now()`,
    })
    .where(and(eq(blobs.sha256, sha256), eq(blobs.scanStatus, 'pending')));
}

/**
 * Infected bytes: the verdict and where the bytes now live (moved to quarantine before this call)
 * change together, so the record never points at a key that no longer exists. Returns false when
 * the blob already had a verdict (a repeated job).
 */
export async function saveInfected(
  db: Executor,
  sha256: string,
  verdict: { signature: string; quarantineKey: string },
): Promise<boolean> {
  const rows = await db
    .update(blobs)
    .set({
      scanStatus: 'infected',
      scanSignature: verdict.signature,
      scanError: null,
      scannedAt: sql`now()`,
      storageKey: verdict.quarantineKey,
      quarantinedAt: sql`now()`,
    })
    .where(and(eq(blobs.sha256, sha256), eq(blobs.scanStatus, 'pending')))
    .returning({ sha256: blobs.sha256 });
  return rows.length > 0;
}

/**
 * The scan gave up (scanner down through every attempt): the blob's scan is `error` with the
 * reason and its `processing` uploads are `failed`, in one transaction. A later upload of the same
 * bytes scans them again (linkBlob does not reuse an `error` verdict).
 */
export async function abandonScan(db: Db, sha256: string, scanError: string, failureReason: string): Promise<FinalizedUpload[]> {
  return db.transaction(async (tx) => {
    await tx
      .update(blobs)
      .set({ scanStatus: 'error', scanSignature: null, scanError, scannedAt: sql`now()` })
      .where(and(eq(blobs.sha256, sha256), eq(blobs.scanStatus, 'pending')));
    return failUploadsIn(tx, { sha256 }, failureReason);
  });
}

export async function findBlob(db: Executor, sha256: string): Promise<BlobRow | undefined> {
  const [blob] = await db.select().from(blobs).where(eq(blobs.sha256, sha256));
  return blob;
}

interface Decision {
  status: Extract<UploadStatus, 'ready' | 'rejected' | 'infected' | 'failed'>;
  rejectionReason: string | null;
  failureReason: string | null;
}

/**
 * The one rule for what a blob's uploads become, in SQL over a blob row (`alias`): null while a
 * step is pending; then infected, rejected (invalid for its kind), failed (a clean verdict is
 * required and there is none), else ready. Every finalizer decides with it.
 */
function blobOutcome(alias: SQL, scanRequired: boolean): SQL {
  return sql`(case
    when not ${alias}.metadata_done or ${alias}.scan_status = 'pending' then null
    when ${alias}.scan_status = 'infected' then 'infected'
    when ${alias}.validation_error is not null then 'rejected'
    when ${scanRequired}::boolean and ${alias}.scan_status <> 'clean' then 'failed'
    else 'ready' end)`;
}

/** Why the uploads of `blob` got the outcome `status` (decided by blobOutcome). */
function explain(status: Decision['status'], blob: BlobRow): Decision {
  switch (status) {
    case 'infected':
      return { status, rejectionReason: `malware detected: ${blob.scanSignature ?? 'unknown signature'}`, failureReason: null };
    case 'rejected':
      return { status, rejectionReason: blob.validationError, failureReason: null };
    case 'failed':
      return {
        status,
        rejectionReason: null,
        failureReason:
          blob.scanStatus === 'error'
            ? `a clean virus scan is required, but the scan failed: ${blob.scanError ?? 'unknown error'}`
            : 'a clean virus scan is required, but the scan did not run',
      };
    case 'ready':
      return { status, rejectionReason: null, failureReason: null };
  }
}

const AUDIT_FOR: Record<Decision['status'], (typeof AUDIT)[keyof typeof AUDIT]> = {
  ready: AUDIT.ready,
  rejected: AUDIT.rejected,
  infected: AUDIT.infected,
  failed: AUDIT.failed,
};

/** The blob row (`alias`) has every step done and its uploads become ready (blobOutcome). */
export function readyOutcome(alias: SQL, scanRequired: boolean): SQL {
  return sql`coalesce(${blobOutcome(alias, scanRequired)} = 'ready', false)`;
}

/**
 * What follows uploads becoming ready, as CTEs after one named `finalized` (columns id, owner_id,
 * filename, was = the quota state before, reserved_bytes, size): each owner's reservation turns
 * into usage, and each upload gets its audit entry (once: the entry's dedupe key).
 */
export function readyBookkeeping(sha256: string | SQL): SQL {
  return sql`
    -- Owners' rows locked in id order, as creations lock them (uploads.ts): no deadlock between
    -- a finalizer of a blob shared by several owners and a batch of creations.
    owners_locked as (
      select id from owners where id in (select owner_id from finalized where was = 'reserved') order by id for update
    ),
    usage as (
      update owners set
        reserved_bytes = owners.reserved_bytes - c.bytes,
        reserved_files = owners.reserved_files - c.files,
        used_bytes = owners.used_bytes + c.used,
        file_count = owners.file_count + c.files
      from (
        select owner_id, sum(reserved_bytes) as bytes, count(*)::int as files, sum(coalesce(size, 0)) as used
        from finalized where was = 'reserved' group by owner_id
      ) c, owners_locked l
      where owners.id = c.owner_id and l.id = c.owner_id
    ),
    entries as (
      insert into audit_log (action, owner_id, upload_id, details, dedupe_key)
      select ${AUDIT.ready}, owner_id, id, jsonb_build_object('filename', filename, 'sha256', ${sha256}::text), 'ready:' || id
      from finalized
      on conflict do nothing
    )`;
}

/**
 * The common end, a blob's uploads becoming ready, in ONE statement: status, quota (reservation
 * turned into usage, per owner) and audit entries together, if the blob's steps are done and its
 * outcome is `ready` (blobOutcome). Returns null when they are not (steps
 * pending, or the outcome is another status): the caller takes the general path.
 *
 * Guarded like the general path: the blob row is locked first (so finalizers of one blob take
 * turns, and the conditions are re-checked on its latest version), only `processing` uploads move
 * (a row another finalizer moved meanwhile is re-checked and skipped), only `reserved` quota is
 * committed, an audit entry is written once. None is left `processing`: linkBlob makes an upload
 * ready itself when its blob has nothing pending, and otherwise whoever completes the blob's last
 * step (after linking committed: the step waits on the blob row) finalizes after its own commit.
 */
async function markReadyIfDone(db: Executor, sha256: string, scanRequired: boolean): Promise<FinalizedUpload[] | null> {
  const rows = await db.execute<{ eligible: number; id: string | null; owner_id: string; completed_at: string | null }>(sql`
    with blob as (
      select sha256, mime_type, scan_status from blobs
      where sha256 = ${sha256} and ${readyOutcome(sql.raw('blobs'), scanRequired)}
      for update
    ),
    targets as (
      select u.id, u.quota_state, u.reserved_bytes, u.size from uploads u join blob on u.blob_sha256 = blob.sha256
      where u.status = 'processing'
      for update of u
    ),
    finalized as (
      update uploads set
        status = 'ready', rejection_reason = null, failure_reason = null,
        detected_mime_type = blob.mime_type, scan_status = blob.scan_status,
        quota_state = case when targets.quota_state = 'reserved' then 'committed' else targets.quota_state end,
        ready_at = now(), finalized_at = now(), updated_at = now()
      from targets, blob
      where uploads.id = targets.id
      returning uploads.id, uploads.owner_id, uploads.filename, uploads.completed_at,
                targets.quota_state as was, targets.reserved_bytes, targets.size
    ),
    ${readyBookkeeping(sha256)}
    select (select count(*)::int from blob) as eligible, f.id, f.owner_id, f.completed_at
    from (select 1) one left join finalized f on true`);
  if (!rows[0] || rows[0].eligible === 0) return null;
  return rows
    .filter((row) => row.id !== null)
    .map((row) => ({
      id: row.id!,
      ownerId: row.owner_id,
      status: 'ready' as const,
      completedAt: row.completed_at === null ? null : new Date(row.completed_at),
    }));
}

/**
 * Once every step of a blob is done, gives each of its `processing` uploads its final status,
 * exactly once: the status update is guarded by `status = 'processing'`, and the quota and
 * audit changes ride in the same transaction (the common `ready` case: the same statement).
 */
export async function finalizeBlob(
  db: Executor,
  sha256: string,
  options: Pick<StepOptions, 'scanRequired'>,
): Promise<FinalizedUpload[]> {
  const ready = await markReadyIfDone(db, sha256, options.scanRequired);
  if (ready) return ready;
  return db.transaction(async (tx) => {
    const [row] = await tx
      .select({ blob: blobs, outcome: sql<Decision['status'] | null>`${blobOutcome(sql.raw('blobs'), options.scanRequired)}` })
      .from(blobs)
      .where(eq(blobs.sha256, sha256))
      .for('update');
    if (!row || row.outcome === null) return [];
    const { blob } = row;
    const decision = explain(row.outcome, blob);
    // Became ready since the statement above looked (a step finished in between).
    if (decision.status === 'ready') return (await markReadyIfDone(tx, sha256, options.scanRequired)) ?? [];
    const rows = await tx
      .update(uploads)
      .set({
        status: decision.status,
        rejectionReason: decision.rejectionReason,
        failureReason: decision.failureReason,
        detectedMimeType: blob.mimeType,
        scanStatus: blob.scanStatus,
        finalizedAt: sql`now()`,
        updatedAt: sql`now()`,
      })
      .where(and(eq(uploads.blobSha256, sha256), eq(uploads.status, 'processing')))
      .returning({ id: uploads.id, ownerId: uploads.ownerId, filename: uploads.filename, completedAt: uploads.completedAt });
    for (const row of rows) {
      await releaseQuota(tx, row.id);
      await audit(tx, {
        action: AUDIT_FOR[decision.status],
        ownerId: row.ownerId,
        uploadId: row.id,
        details: {
          filename: row.filename,
          sha256,
          ...(decision.status === 'infected' ? { signature: blob.scanSignature } : {}),
          ...(decision.rejectionReason ? { reason: decision.rejectionReason } : {}),
          ...(decision.failureReason ? { reason: decision.failureReason } : {}),
        },
        dedupeKey: `${decision.status}:${row.id}`,
      });
    }
    return rows.map((row) => ({ id: row.id, ownerId: row.ownerId, status: decision.status, completedAt: row.completedAt }));
  });
}

/** Processing gave up (retries exhausted): the upload is `failed` with the reason. */
export async function failUploads(
  db: Db,
  where: { uploadId: string } | { sha256: string },
  reason: string,
  fromStatus: 'processing' | 'uploading' = 'processing',
): Promise<FinalizedUpload[]> {
  return db.transaction((tx) => failUploadsIn(tx, where, reason, fromStatus));
}

async function failUploadsIn(
  tx: Tx,
  where: { uploadId: string } | { sha256: string },
  reason: string,
  fromStatus: 'processing' | 'uploading' = 'processing',
): Promise<FinalizedUpload[]> {
  const rows = await tx
    .update(uploads)
    .set({ status: 'failed', failureReason: reason, finalizedAt: sql`now()`, updatedAt: sql`now()` })
    .where(
      and(
        'uploadId' in where ? eq(uploads.id, where.uploadId) : eq(uploads.blobSha256, where.sha256),
        eq(uploads.status, fromStatus),
      ),
    )
    .returning({ id: uploads.id, ownerId: uploads.ownerId, completedAt: uploads.completedAt });
  for (const row of rows) {
    await releaseQuota(tx, row.id);
    await audit(tx, {
      action: AUDIT.failed,
      ownerId: row.ownerId,
      uploadId: row.id,
      details: { reason },
      dedupeKey: `failed:${row.id}`,
    });
  }
  return rows.map((row) => ({ ...row, status: 'failed' as const }));
}
