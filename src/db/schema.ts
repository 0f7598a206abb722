// The database schema. drizzle-kit generates the SQL migrations in drizzle/ from this file
// (`npm run db:generate`); the server applies them at start.
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  check,
  date,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
const bytes = (name: string) => bigint(name, { mode: 'number' });

export const UPLOAD_STATUSES = [
  'uploading',
  'processing',
  'ready',
  'rejected',
  'infected',
  'failed',
  'expired',
  'deleted',
] as const;
export type UploadStatus = (typeof UPLOAD_STATUSES)[number];
export const FINAL_STATUSES: readonly UploadStatus[] = ['ready', 'rejected', 'infected', 'failed', 'expired', 'deleted'];

export const SCAN_STATUSES = ['pending', 'clean', 'infected', 'skipped', 'error'] as const;
export type ScanStatus = (typeof SCAN_STATUSES)[number];

/**
 * Owners and their quota. Limits are per-owner overrides (null = use the configured default);
 * usage counters are maintained by the quota module in the same transactions that change uploads.
 */
export const owners = pgTable(
  'owners',
  {
    id: text('id').primaryKey(),
    createdAt: ts('created_at').notNull().defaultNow(),
    maxBytes: bytes('max_bytes'),
    maxFiles: integer('max_files'),
    maxFileSize: bytes('max_file_size'),
    monthlyBytes: bytes('monthly_bytes'),
    usedBytes: bytes('used_bytes').notNull().default(0),
    fileCount: integer('file_count').notNull().default(0),
    reservedBytes: bytes('reserved_bytes').notNull().default(0),
    reservedFiles: integer('reserved_files').notNull().default(0),
    // Bytes accepted for upload in the calendar month that starts at `monthStart` (UTC).
    monthBytes: bytes('month_bytes').notNull().default(0),
    monthStart: date('month_start', { mode: 'string' }),
  },
  (t) => [
    check('owners_used_bytes_nonneg', sql`${t.usedBytes} >= 0`),
    check('owners_reserved_bytes_nonneg', sql`${t.reservedBytes} >= 0`),
    check('owners_file_count_nonneg', sql`${t.fileCount} >= 0`),
    check('owners_reserved_files_nonneg', sql`${t.reservedFiles} >= 0`),
  ],
);

/**
 * Content-addressed blobs. Identical bytes uploaded twice share one blob (and one stored object);
 * the processing results (metadata, scan verdict) belong to the content and are reused.
 */
export const blobs = pgTable(
  'blobs',
  {
    sha256: text('sha256').primaryKey(),
    md5: text('md5').notNull(),
    size: bytes('size').notNull(),
    // Where the bytes live in the object storage (an upload id, or quarantine/<id>).
    storageKey: text('storage_key').notNull(),
    refCount: integer('ref_count').notNull().default(0),
    kind: text('kind').notNull(),
    format: text('format'),
    mimeType: text('mime_type'),
    // Processing cache: null until the step ran for this content.
    metadata: jsonb('metadata'),
    metadataError: text('metadata_error'),
    metadataDone: boolean('metadata_done').notNull().default(false),
    validationError: text('validation_error'),
    scanStatus: text('scan_status').$type<ScanStatus>().notNull().default('pending'),
    scanSignature: text('scan_signature'),
    // Why the scan gave no verdict (status `error`): too large for the scanner, scanner down.
    scanError: text('scan_error'),
    scannedAt: ts('scanned_at'),
    // Infected bytes were moved to quarantine/<key> at this time; the lifecycle job purges them
    // after QUARANTINE_RETENTION (the blob row stays, so the same bytes stay known as infected).
    quarantinedAt: ts('quarantined_at'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    check('blobs_ref_count_nonneg', sql`${t.refCount} >= 0`),
    index('blobs_storage_key_idx').on(t.storageKey),
    // The duplicates report reads only shared blobs.
    index('blobs_shared_idx').on(t.refCount).where(sql`${t.refCount} > 1`),
  ],
);

export const uploads = pgTable(
  'uploads',
  {
    id: text('id').primaryKey(),
    ownerId: text('owner_id')
      .notNull()
      .references(() => owners.id),
    filename: text('filename').notNull(),
    mimeType: text('mime_type'),
    kind: text('kind').notNull(),
    // Declared length; null while the client defers it (creation-defer-length).
    size: bytes('size'),
    status: text('status').$type<UploadStatus>().notNull().default('uploading'),
    // Bytes this upload holds in its owner's reservation (quota), released exactly once.
    reservedBytes: bytes('reserved_bytes').notNull().default(0),
    quotaState: text('quota_state').$type<'none' | 'reserved' | 'committed' | 'released'>().notNull().default('none'),
    // Content hashes, known once the bytes were read (also for rejected files).
    sha256: text('sha256'),
    md5: text('md5'),
    // Copies of the content's facts taken when the file reaches its final status, so analytics
    // read one table (at a million uploads a join with blobs costs a second).
    detectedMimeType: text('detected_mime_type'),
    scanStatus: text('scan_status').$type<ScanStatus>(),
    // The blob this upload holds a reference to (set by de-duplication, cleared when the
    // reference is dropped on deletion or purge).
    blobSha256: text('blob_sha256').references(() => blobs.sha256),
    deduplicated: boolean('deduplicated').notNull().default(false),
    rejectionReason: text('rejection_reason'),
    failureReason: text('failure_reason'),
    // The object key of this upload's own bytes while they are its own (before de-duplication).
    storageKey: text('storage_key'),
    tusMetadata: jsonb('tus_metadata').$type<Record<string, string | null>>(),
    // tus concatenation: 'partial', or the final's Upload-Concat value ('final;<url> <url>').
    uploadConcat: text('upload_concat'),
    // A final upload's partial upload ids, in order.
    concatParts: text('concat_parts').array(),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
    completedAt: ts('completed_at'),
    readyAt: ts('ready_at'),
    finalizedAt: ts('finalized_at'),
    deletedAt: ts('deleted_at'),
    expiresAt: ts('expires_at'),
  },
  (t) => [
    index('uploads_owner_created_idx').on(t.ownerId, t.createdAt, t.id),
    index('uploads_status_updated_idx').on(t.status, t.updatedAt),
    index('uploads_blob_idx').on(t.blobSha256),
    index('uploads_sha256_idx').on(t.sha256),
    index('uploads_storage_key_idx').on(t.storageKey),
    index('uploads_expires_idx').on(t.expiresAt).where(sql`${t.status} = 'uploading'`),
    // Counting an owner's unfinished uploads (QUOTA_MAX_UNFINISHED_UPLOADS) at each creation.
    index('uploads_owner_unfinished_idx').on(t.ownerId).where(sql`${t.status} = 'uploading'`),
    index('uploads_finalized_idx').on(t.status, t.finalizedAt),
    index('uploads_created_idx').on(t.createdAt),
    check('uploads_size_nonneg', sql`${t.size} is null or ${t.size} >= 0`),
  ],
);

/** Append-only audit trail of every state change that matters. */
export const auditLog = pgTable(
  'audit_log',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    at: ts('at').notNull().defaultNow(),
    action: text('action').notNull(),
    ownerId: text('owner_id'),
    uploadId: text('upload_id'),
    actor: text('actor'),
    details: jsonb('details').$type<Record<string, unknown>>(),
    // Makes an entry written by a retried job land once: (upload, action, dedupe key) is unique.
    dedupeKey: text('dedupe_key'),
  },
  (t) => [
    index('audit_owner_idx').on(t.ownerId, t.at),
    index('audit_upload_idx').on(t.uploadId, t.at),
    index('audit_action_idx').on(t.action, t.at),
    uniqueIndex('audit_dedupe_idx').on(t.dedupeKey),
  ],
);

export type OwnerRow = typeof owners.$inferSelect;
export type BlobRow = typeof blobs.$inferSelect;
export type UploadRow = typeof uploads.$inferSelect;
export type AuditRow = typeof auditLog.$inferSelect;

/** Secrets the server generates once and shares between its instances (e.g. link signing). */
export const serverSecrets = pgTable('server_secrets', {
  name: text('name').primaryKey(),
  value: text('value').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
});
