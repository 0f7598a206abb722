// Upload records: creation, the uploading → processing transition (with its job), termination.
import { and, eq, sql } from 'drizzle-orm';
import type { Kind } from '../config/index.js';
import { audit, AUDIT } from './audit.js';
import type { Db } from './client.js';
import { TASKS } from './jobs.js';
import { removeFile } from './files.js';
import { reservationStatement, reserveForUpload, type QuotaDefaults } from './quota.js';
import { owners, uploads, type UploadRow } from './schema.js';
import type { Executor } from './tx.js';

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
}

export async function ensureOwner(tx: Executor, ownerId: string): Promise<void> {
  await tx.insert(owners).values({ id: ownerId }).onConflictDoNothing();
}

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
  const reservedBytes = await reserveForUpload(tx, input.ownerId, input.size, quota, { files: partial ? 0 : 1 });
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
      storageKey: input.id,
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

export async function createUploadRecord(db: Db, input: NewUpload, quota: QuotaDefaults): Promise<void> {
  // The common case in one statement (one round trip per creation): reserve, insert, audit. A
  // refusal or a new owner takes the transaction, which says which limit was hit precisely.
  const partial = input.uploadConcat === 'partial';
  const details = JSON.stringify({ filename: input.filename, kind: input.kind, size: input.size });
  const [created] = await db.execute<{ id: string }>(sql`
    with reserve as (${reservationStatement(input.ownerId, input.size, partial ? 0 : 1, quota)}),
    created as (
      insert into uploads (id, owner_id, filename, mime_type, kind, size, status, reserved_bytes, quota_state,
                           storage_key, tus_metadata, upload_concat, expires_at)
      select ${input.id}, ${input.ownerId}, ${input.filename}, ${input.mimeType}, ${input.kind}, ${input.size}::bigint,
             'uploading', ${input.size ?? 0}::bigint, 'reserved', ${input.id}, ${JSON.stringify(input.tusMetadata)}::jsonb,
             ${input.uploadConcat ?? null}, ${input.expiresAt?.toISOString() ?? null}::timestamptz
      from reserve
      returning id
    ),
    entry as (
      insert into audit_log (action, owner_id, upload_id, actor, details)
      select ${AUDIT.created}, ${input.ownerId}, id, ${input.ownerId}, ${details}::jsonb from created
    )
    select id from created`);
  if (created) return;
  await db.transaction((tx) => insertUpload(tx, input, quota));
}

export async function findUpload(db: Executor, id: string): Promise<UploadRow | undefined> {
  const [row] = await db.select().from(uploads).where(eq(uploads.id, id)).limit(1);
  return row;
}

/**
 * All bytes arrived: marks the upload `processing` and enqueues its processing job in ONE
 * transaction, so a finished upload can never lose its job. Only the first caller wins (the
 * finish hook, a HEAD that notices a finished upload, or the reconciler); later calls are no-ops.
 */
export async function markUploadFinished(
  db: Db,
  id: string,
  options: { size: number; maxAttempts: number },
): Promise<boolean> {
  // One statement, so one round trip on the hot path of every upload: the status change, the job
  // and the audit entry commit together or not at all (a statement is atomic).
  const payload = JSON.stringify({ uploadId: id });
  const details = JSON.stringify({ size: options.size });
  const [row] = await db.execute<{ finished: boolean }>(sql`
    with finished as (
      update uploads
      set status = 'processing', size = ${options.size}, completed_at = now(), updated_at = now(), expires_at = null
      -- Partial uploads (tus concatenation) are chunks of a file, not files: never processed.
      where id = ${id} and status = 'uploading' and coalesce(upload_concat, '') <> 'partial'
      returning owner_id
    ),
    job as (
      select graphile_worker.add_job(
        identifier := ${TASKS.processUpload}, payload := ${payload}::json,
        max_attempts := ${options.maxAttempts}::int, job_key := ${`process:${id}`}::text)
      from finished
    ),
    entry as (
      insert into audit_log (action, owner_id, upload_id, details)
      select ${AUDIT.completed}, owner_id, ${id}, ${details}::jsonb from finished
    )
    select exists (select 1 from job) as finished`);
  return row?.finished === true;
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
