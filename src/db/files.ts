// Reading and deleting files (uploads with their content blob) for the files API.
import { and, desc, eq, lt, ne, or, sql, type SQL } from 'drizzle-orm';
import type { Kind } from '../config/index.js';
import { audit, type AuditAction } from './audit.js';
import type { Db } from './client.js';
import { releaseQuota } from './quota.js';
import type { Executor } from './tx.js';
import { blobs, uploads, type BlobRow, type UploadRow, type UploadStatus } from './schema.js';

/** Partial uploads (tus concatenation) are chunks of a file, not files: the files API hides them. */
const notPartial = sql`coalesce(${uploads.uploadConcat}, '') <> 'partial'`;

export interface FileRow {
  upload: UploadRow;
  blob: BlobRow | null;
}

/** The owner's file, or undefined for a missing id, another owner's file or a deleted one. */
export async function findOwnedFile(db: Executor, id: string, ownerId: string): Promise<FileRow | undefined> {
  const [row] = await db
    .select({ upload: uploads, blob: blobs })
    .from(uploads)
    .leftJoin(blobs, eq(blobs.sha256, uploads.blobSha256))
    .where(and(eq(uploads.id, id), eq(uploads.ownerId, ownerId), ne(uploads.status, 'deleted'), notPartial))
    .limit(1);
  return row;
}

/** Any owner's files with this id or these bytes (sha256), newest first, deleted ones included: an operator's lookup. */
export async function findFilesForAdmin(db: Executor, by: { id: string } | { sha256: string }, limit = 50): Promise<FileRow[]> {
  const match = 'id' in by ? eq(uploads.id, by.id) : eq(uploads.sha256, by.sha256);
  return db
    .select({ upload: uploads, blob: blobs })
    .from(uploads)
    .leftJoin(blobs, eq(blobs.sha256, uploads.blobSha256))
    .where(and(match, notPartial))
    .orderBy(desc(uploads.createdAt), desc(uploads.id))
    .limit(limit);
}

export interface ListCursor {
  createdAt: Date;
  id: string;
}

export interface ListFilter {
  ownerId: string;
  status?: Exclude<UploadStatus, 'deleted'> | undefined;
  kind?: Kind | undefined;
  after?: ListCursor | undefined;
  limit: number;
}

/**
 * An owner's files, newest first, by keyset pagination on (created_at, id): uploads arriving while
 * a client pages through land before its first page, so pages never repeat or skip a file.
 */
export async function listOwnedFiles(db: Executor, filter: ListFilter): Promise<{ rows: FileRow[]; next: ListCursor | null }> {
  return listFiles(db, filter);
}

/** Every owner's files (or one owner's, with ownerId), the same pages: an operator's listing. */
export async function listFilesForAdmin(
  db: Executor,
  filter: Omit<ListFilter, 'ownerId'> & { ownerId?: string | undefined },
): Promise<{ rows: FileRow[]; next: ListCursor | null }> {
  return listFiles(db, filter);
}

async function listFiles(
  db: Executor,
  filter: Omit<ListFilter, 'ownerId'> & { ownerId?: string | undefined },
): Promise<{ rows: FileRow[]; next: ListCursor | null }> {
  const conditions: SQL[] = [ne(uploads.status, 'deleted'), notPartial];
  if (filter.ownerId !== undefined) conditions.push(eq(uploads.ownerId, filter.ownerId));
  if (filter.status) conditions.push(eq(uploads.status, filter.status));
  if (filter.kind) conditions.push(eq(uploads.kind, filter.kind));
  if (filter.after) {
    conditions.push(
      or(
        lt(uploads.createdAt, filter.after.createdAt),
        and(eq(uploads.createdAt, filter.after.createdAt), lt(uploads.id, filter.after.id)),
      )!,
    );
  }
  const rows = await db
    .select({ upload: uploads, blob: blobs })
    .from(uploads)
    .leftJoin(blobs, eq(blobs.sha256, uploads.blobSha256))
    .where(and(...conditions))
    .orderBy(desc(uploads.createdAt), desc(uploads.id))
    .limit(filter.limit + 1);
  const page = rows.slice(0, filter.limit);
  const last = page.at(-1);
  return {
    rows: page,
    next: rows.length > filter.limit && last ? { createdAt: last.upload.createdAt, id: last.upload.id } : null,
  };
}

export interface Removed {
  upload: UploadRow;
  /** Stored objects nobody references any more: remove them (after the commit). */
  objectsToRemove: string[];
}

export interface RemoveOptions {
  /** Only this owner's file (API deletions); lifecycle jobs act on any owner's. */
  ownerId?: string;
  actor: string;
  action: AuditAction;
  /** The status the record ends in: `deleted` (deletion, purge) or `expired`. */
  status: Extract<UploadStatus, 'deleted' | 'expired'>;
  /** Act only while the record is in one of these statuses (lifecycle guards). */
  onlyIf?: UploadStatus[];
  /** Act only while the upload's expiry is before this instant (activity may extend it). */
  expiredBefore?: Date;
}

/**
 * Removes a file: the record becomes `deleted` (or `expired`), its quota is given back, its
 * reference on the content blob is dropped, and the blob itself goes with its last reference.
 * The caller removes the returned objects after the commit; a crash in between leaves an orphan
 * that the lifecycle sweep removes. Locks the blob before the upload, the same order as
 * finalizeBlob, so the two cannot deadlock.
 */
export async function removeFile(db: Db, id: string, options: RemoveOptions): Promise<Removed | null> {
  const visible = (upload: Pick<UploadRow, 'ownerId' | 'status' | 'expiresAt'>) =>
    upload.status !== 'deleted' &&
    (options.ownerId === undefined || upload.ownerId === options.ownerId) &&
    (options.onlyIf === undefined || options.onlyIf.includes(upload.status)) &&
    (options.expiredBefore === undefined || (upload.expiresAt !== null && upload.expiresAt < options.expiredBefore));
  for (;;) {
    const [peek] = await db.select().from(uploads).where(eq(uploads.id, id));
    if (!peek || !visible(peek)) return null;
    const result = await db.transaction(async (tx) => {
      if (peek.blobSha256) await tx.select({ sha256: blobs.sha256 }).from(blobs).where(eq(blobs.sha256, peek.blobSha256)).for('update');
      const [upload] = await tx.select().from(uploads).where(eq(uploads.id, id)).for('update');
      if (!upload || !visible(upload)) return null;
      if (upload.blobSha256 !== peek.blobSha256) return 'retry' as const; // linked meanwhile

      const objectsToRemove: string[] = [];
      if (upload.storageKey) objectsToRemove.push(upload.storageKey);
      const [removed] = await tx
        .update(uploads)
        .set({
          status: options.status,
          ...(options.status === 'deleted' ? { deletedAt: sql`now()` } : {}),
          updatedAt: sql`now()`,
          blobSha256: null,
          storageKey: null,
          expiresAt: null,
        })
        .where(eq(uploads.id, id))
        .returning();
      if (upload.blobSha256) {
        const [blob] = await tx
          .update(blobs)
          .set({ refCount: sql`${blobs.refCount} - 1` })
          .where(eq(blobs.sha256, upload.blobSha256))
          .returning({ refCount: blobs.refCount, storageKey: blobs.storageKey });
        if (blob && blob.refCount === 0) {
          await tx.delete(blobs).where(and(eq(blobs.sha256, upload.blobSha256), eq(blobs.refCount, 0)));
          objectsToRemove.push(blob.storageKey);
        }
      }
      await releaseQuota(tx, id);
      await audit(tx, {
        action: options.action,
        ownerId: upload.ownerId,
        uploadId: id,
        actor: options.actor,
        details: {
          filename: upload.filename,
          previousStatus: upload.status,
          size: upload.size,
          sha256: upload.sha256,
          removedObjects: objectsToRemove,
        },
      });
      return { upload: removed!, objectsToRemove };
    });
    if (result !== 'retry') return result;
  }
}
