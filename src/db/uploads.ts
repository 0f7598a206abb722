// Upload records: creation, the uploading → processing transition (with its job), termination.
import { and, eq, sql, type SQL } from 'drizzle-orm';
import type { Kind } from '../config/index.js';
import { audit, AUDIT } from './audit.js';
import type { Db } from './client.js';
import { coalesce, type CoalesceOptions } from './coalesce.js';
import { removeFile } from './files.js';
import { JOBS, jobSpec, type ContentDigest, type FirstBytes } from './jobs.js';
import { reservation, reserveForUpload, type QuotaDefaults } from './quota.js';
import { owners, uploads, type UploadRow } from './schema.js';
import type { Executor, Tx } from './tx.js';
import { isDatabaseUnavailable } from './unavailable.js';

export interface NewUpload {
  id: string;
  ownerId: string;
  filename: string;
  mimeType: string | null;
  kind: Kind;
  size: number | null;
  tusMetadata: Record<string, string | null>;
  uploadConcat?: string | null;
  expiresAt: Date | null;
  /** Bytes an upload of unknown length holds from the start: the body of its creation request. */
  reserveBytes?: number;
  /** The wire protocol that creates it (default tus) and, for the IETF draft, its interop version. */
  transport?: 'tus' | 'ietf' | 's3-direct';
  interopVersion?: number | null;
  /** What the application's pre-create hook attached (src/webhooks/pre-create.ts). */
  appMetadata?: Record<string, unknown> | null;
  /** Where its bytes land (default: the upload id, as the tus stores name them). */
  storageKey?: string;
}

async function ensureOwner(db: Executor, ownerId: string): Promise<void> {
  await db.insert(owners).values({ id: ownerId }).onConflictDoNothing();
}

/** What became of one input of `insertUploadRecords`. */
export type InsertOutcome = 'created' | 'refused' | 'unknown-owner';

/**
 * Inserts an upload record with its quota reservation and audit entry, inside the caller's
 * transaction: either the upload exists with its reservation or neither does.
 */
export async function insertUpload(
  tx: Executor,
  input: NewUpload & { concatParts?: string[] },
  quota: QuotaDefaults,
): Promise<UploadRow> {
  // (reserveForUpload creates the owner's row on first use.)
  // A partial upload (tus concatenation) holds bytes but is not a file: no file slot.
  const partial = input.uploadConcat === 'partial';
  const reservedBytes = await reserveForUpload(tx, input.ownerId, input.size, quota, {
    files: partial ? 0 : 1,
    bytes: input.size ?? input.reserveBytes ?? 0,
  });
  const [row] = await tx
    .insert(uploads)
    .values({
      id: input.id,
      ownerId: input.ownerId,
      filename: input.filename,
      mimeType: input.mimeType,
      kind: input.kind,
      size: input.size,
      status: 'uploading',
      reservedBytes,
      quotaState: 'reserved',
      storageKey: input.storageKey ?? input.id,
      transport: input.transport ?? 'tus',
      interopVersion: input.interopVersion ?? null,
      appMetadata: input.appMetadata ?? null,
      tusMetadata: input.tusMetadata,
      uploadConcat: input.uploadConcat ?? null,
      concatParts: input.concatParts ?? null,
      expiresAt: input.expiresAt,
    })
    .returning();
  await audit(tx, {
    action: AUDIT.created,
    ownerId: input.ownerId,
    uploadId: input.id,
    actor: input.ownerId,
    details: {
      filename: input.filename,
      kind: input.kind,
      size: input.size,
      ...(input.concatParts ? { parts: input.concatParts.length } : {}),
    },
  });
  return row!;
}

/**
 * Inserts upload records with their quota reservations and audit entries in ONE statement (one
 * round trip and one commit for the lot; see coalesce.ts for why several). Returns, per input,
 * `created`, `unknown-owner` (the owner has no row yet) or `refused` (the owner's uploads in this
 * statement would, together, pass one of the owner's limits). The caller creates those through
 * `createUploadRecord`, which says precisely which limit was hit.
 *
 * The owners' rows are locked in id order first, so statements that reserve for several owners
 * at once cannot deadlock with each other.
 */
export async function insertUploadRecords(db: Db, inputs: readonly NewUpload[], quota: QuotaDefaults): Promise<InsertOutcome[]> {
  const rows = inputs.map((input) => {
    const partial = input.uploadConcat === 'partial';
    return {
      id: input.id,
      owner_id: input.ownerId,
      filename: input.filename,
      mime_type: input.mimeType,
      kind: input.kind,
      size: input.size,
      reserve: input.size ?? input.reserveBytes ?? 0,
      // A partial upload (tus concatenation) holds bytes but is not a file: no file slot.
      files: partial ? 0 : 1,
      tus_metadata: input.tusMetadata,
      upload_concat: input.uploadConcat ?? null,
      storage_key: input.storageKey ?? input.id,
      transport: input.transport ?? 'tus',
      interop_version: input.interopVersion ?? null,
      app_metadata: input.appMetadata ?? null,
      expires_at: input.expiresAt?.toISOString() ?? null,
      details: { filename: input.filename, kind: input.kind, size: input.size },
    };
  });
  // Per owner, the sum of this statement's uploads (the largest one for the single-file limit).
  const { set, allowed } = reservation({ bytes: sql`d.bytes`, files: sql`d.files`, largest: sql`d.largest`, uploads: sql`d.uploads` }, quota);
  const outcome = await db.execute<{ id: string; what: 'created' | 'owner' }>(sql`
    with input as (
      select * from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as x(
        id text, owner_id text, filename text, mime_type text, kind text, size bigint, reserve bigint, files int,
        tus_metadata jsonb, upload_concat text, storage_key text, transport text, interop_version smallint, app_metadata jsonb, expires_at timestamptz, details jsonb)
    ),
    demand as (
      select owner_id, sum(reserve)::bigint as bytes, sum(files)::int as files, max(coalesce(size, nullif(reserve, 0))) as largest,
             count(*)::int as uploads
      from input group by owner_id
    ),
    locked as (
      select id from owners where id in (select owner_id from demand) order by id for update
    ),
    reserve as (
      update owners o set ${set}
      from demand d, locked l
      where o.id = d.owner_id and l.id = d.owner_id and ${allowed}
      returning o.id
    ),
    created as (
      insert into uploads (id, owner_id, filename, mime_type, kind, size, status, reserved_bytes, quota_state,
                           storage_key, tus_metadata, upload_concat, transport, interop_version, app_metadata, expires_at)
      select i.id, i.owner_id, i.filename, i.mime_type, i.kind, i.size, 'uploading', i.reserve, 'reserved',
             i.storage_key, i.tus_metadata, i.upload_concat, i.transport, i.interop_version, i.app_metadata, i.expires_at
      from input i join reserve r on r.id = i.owner_id
      returning id
    ),
    entry as (
      insert into audit_log (action, owner_id, upload_id, actor, details)
      select ${AUDIT.created}, i.owner_id, i.id, i.owner_id, i.details from input i join created c on c.id = i.id
    )
    select id, 'created' as what from created
    union all
    select id, 'owner' from locked`);
  const created = new Set(outcome.filter((row) => row.what === 'created').map((row) => row.id));
  const known = new Set(outcome.filter((row) => row.what === 'owner').map((row) => row.id));
  return inputs.map((input) => (created.has(input.id) ? 'created' : known.has(input.ownerId) ? 'refused' : 'unknown-owner'));
}

/**
 * Creates one upload record with its reservation: the common case in one statement (batched by
 * `tryInsert` when it coalesces), a new owner after making its row, a refusal in a transaction
 * that says precisely which limit was hit (or finds that the limit is not hit on its own).
 */
export async function createUploadRecord(
  db: Db,
  input: NewUpload,
  quota: QuotaDefaults,
  tryInsert: (input: NewUpload) => Promise<InsertOutcome> = async (one) => (await insertUploadRecords(db, [one], quota))[0]!,
): Promise<void> {
  let outcome = await tryInsert(input);
  if (outcome === 'unknown-owner') {
    // A new owner: make its row and take the common path again (the first burst of a new owner's
    // uploads would otherwise queue one by one on that row in the transaction below).
    await ensureOwner(db, input.ownerId);
    outcome = await tryInsert(input);
  }
  if (outcome === 'created') return;
  await db.transaction((tx) => insertUpload(tx, input, quota));
}

// Built once per database handle: every tus request and job looks an upload up, and drizzle's
// query building cost more CPU than PostgreSQL's lookup.
const findUploadQueries = new WeakMap<Executor, ReturnType<typeof prepareFindUpload>>();
function prepareFindUpload(db: Executor) {
  return db.select().from(uploads).where(eq(uploads.id, sql.placeholder('id'))).limit(1).prepare('find_upload');
}

export async function findUpload(db: Executor, id: string): Promise<UploadRow | undefined> {
  let query = findUploadQueries.get(db);
  if (!query) findUploadQueries.set(db, (query = prepareFindUpload(db)));
  const [row] = await query.execute({ id });
  return row;
}

/** An upload's record as the tus store reads it (length, metadata), unless its bytes are gone. */
export async function tusInfoOf(db: Executor, id: string): Promise<UploadRow | undefined> {
  const row = await findUpload(db, id);
  return row && row.status !== 'deleted' && row.status !== 'expired' ? row : undefined;
}

/** An upload whose bytes all arrived: its length and, when hashed on arrival, its digests (and first bytes). */
export interface FinishedUpload {
  id: string;
  size: number;
  digest?: (ContentDigest & { first?: FirstBytes | null }) | null;
}

/**
 * All bytes arrived: marks uploads `processing` and enqueues their processing jobs in ONE
 * statement, so a finished upload can never lose its job (and several finishing at once share a
 * round trip and a commit). Only the first caller wins for an upload (the finish hook, a HEAD that
 * notices a finished upload, or the reconciler); later calls are no-ops. Returns, per input,
 * whether this call started its processing.
 */
export async function markUploadsFinished(
  db: Db,
  finished: readonly FinishedUpload[],
  options: { maxAttempts: number },
): Promise<boolean[]> {
  // The job carries what it needs of the upload and what cannot change any more (where its bytes
  // are, their length, the declared kind), so its first attempt does not read the record back.
  const processJob = jobSpec('process_upload', {
    payload: JOBS.process_upload.payloadFromRow(sql`finished`, {
      sha256: sql`finished.arrival_sha256`,
      md5: sql`finished.arrival_md5`,
      first: sql`finished.arrival_first`,
    }),
    key: JOBS.process_upload.key.sql(sql`finished.id`),
    maxAttempts: options.maxAttempts,
  });
  const rows = await db.execute<{ id: string; jobs: number }>(sql`
    with ${finishedUploads(finished)},
    specs as (
      select array_agg(${processJob}) as specs
      from finished
    ),
    jobs as (
      select job.id from specs, graphile_worker.add_jobs(specs.specs, false) job where specs.specs is not null
    )
    select f.id, j.jobs from finished f, (select count(*)::int as jobs from jobs) j`);
  const started = new Set(rows.map((row) => row.id));
  // Every started upload has its job (a statement is atomic); this only guards the SQL above.
  if (rows.length > 0 && rows[0]!.jobs !== rows.length) {
    throw new Error(`${rows.length} uploads finished but ${rows[0]!.jobs} processing jobs were enqueued`);
  }
  return finished.map((upload) => started.has(upload.id));
}

/**
 * The uploading → processing transition with its audit entry, as CTEs `input`, `finished` (one
 * row per upload that made it) and `entry`: the one rule for every way an upload finishes.
 */
function finishedUploads(finished: readonly FinishedUpload[]): SQL {
  const input = finished.map(({ id, size, digest }) => ({ id, size, sha256: digest?.sha256 ?? null, md5: digest?.md5 ?? null, first: digest?.first ?? null }));
  return sql`
    input as (
      select * from jsonb_to_recordset(${JSON.stringify(input)}::jsonb) as x(id text, size bigint, sha256 text, md5 text, first jsonb)
    ),
    finished as (
      update uploads u
      set status = 'processing', size = i.size, completed_at = now(), updated_at = now(), expires_at = null
      from input i
      -- Partial uploads (tus concatenation) are chunks of a file, not files: never processed.
      where u.id = i.id and u.status = 'uploading' and coalesce(u.upload_concat, '') <> 'partial'
      returning u.id, u.owner_id, i.size, u.storage_key, u.kind, u.mime_type, i.sha256 as arrival_sha256, i.md5 as arrival_md5,
                i.first as arrival_first
    ),
    entry as (
      insert into audit_log (action, owner_id, upload_id, details)
      select ${AUDIT.completed}, owner_id, id, jsonb_build_object('size', size) from finished
    )`;
}

/** A finished upload's record as processing starts from it. */
export interface ProcessingUpload {
  storageKey: string;
  size: number;
  kind: Kind;
  mimeType: string | null;
}

/**
 * All bytes arrived and the caller processes them itself, in its transaction `tx` (small files
 * finished inline): the uploads become `processing` as in markUploadsFinished, without a job, in
 * one statement. A rollback leaves them `uploading`, which the next finish or the reconciler takes
 * up. Returns the uploads this call started, by id (null: started, but its record names no stored
 * object, so it cannot be processed from it); one it did not start (finished already, a partial
 * upload, no such upload) is absent.
 */
export async function startProcessingInline(tx: Tx, finished: readonly FinishedUpload[]): Promise<Map<string, ProcessingUpload | null>> {
  const rows = await tx.execute<{ id: string; size: number; storage_key: string | null; kind: Kind; mime_type: string | null }>(sql`
    with ${finishedUploads(finished)}
    select id, size, storage_key, kind, mime_type from finished`);
  return new Map(
    rows.map((row) => [row.id, row.storage_key === null ? null : { storageKey: row.storage_key, size: row.size, kind: row.kind, mimeType: row.mime_type }]),
  );
}

export async function markUploadFinished(
  db: Db,
  id: string,
  options: { size: number; maxAttempts: number },
): Promise<boolean> {
  const [started] = await markUploadsFinished(db, [{ id, size: options.size }], options);
  return started === true;
}

/** Keeps an incomplete upload alive: each PATCH pushes its expiry back. */
export async function touchUpload(db: Executor, id: string, expiresAt: Date | null): Promise<void> {
  await db
    .update(uploads)
    .set({ updatedAt: sql`now()`, expiresAt })
    .where(and(eq(uploads.id, id), eq(uploads.status, 'uploading')));
}

/**
 * Termination of an unfinished upload (tus DELETE): the record first, then @tus/server removes the
 * bytes. A crash in between leaves stored bytes without a live record, which the orphan sweep
 * removes; never a live record without bytes.
 */
export async function markUploadTerminated(db: Db, id: string, ownerId: string): Promise<boolean> {
  const removed = await removeFile(db, id, {
    ownerId,
    actor: ownerId,
    action: AUDIT.terminated,
    status: 'deleted',
    onlyIf: ['uploading'],
  });
  return removed !== null;
}

/** Creation and finish of uploads as the tus hooks call them, many at once as one statement. */
export interface UploadRecords {
  create(input: NewUpload): Promise<void>;
  /** True when this call started the upload's processing; `digest`: its bytes' digests, if known. */
  finish(id: string, size: number, digest?: ContentDigest | null): Promise<boolean>;
}

export function uploadRecords(
  db: Db,
  options: { quota: QuotaDefaults; maxAttempts: number; batching?: CoalesceOptions },
): UploadRecords {
  // One statement in the database at a time per kind, like PostgreSQL's own group commit: the
  // calls that arrive meanwhile go next, together (two at a time made batches of one or two).
  const batching = options.batching ?? { maxBatch: 64, maxInFlight: 1, retryAlone: (error: unknown) => !isDatabaseUnavailable(error) };
  const tryInsert = coalesce((inputs: NewUpload[]) => insertUploadRecords(db, inputs, options.quota), batching);
  const finish = coalesce((items: FinishedUpload[]) => markUploadsFinished(db, items, options), batching);
  return {
    create: (input) => createUploadRecord(db, input, options.quota, tryInsert),
    finish: (id, size, digest) => finish({ id, size, digest: digest ?? null }),
  };
}
