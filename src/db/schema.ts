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
  primaryKey,
  smallint,
  text,
  timestamp,
  uniqueIndex,
  uuid,
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

/** Where a blob's object lives: a storage class, moved by the lifecycle sweep (src/lifecycle/tiers.ts). */
export const STORAGE_TIERS = ['standard', 'infrequent', 'archive'] as const;
export type StorageTier = (typeof STORAGE_TIERS)[number];

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
    // Storage tiering is per object, so per blob: shared content moves once for every reference.
    storageTier: text('storage_tier').$type<StorageTier>().notNull().default('standard'),
    archivedAt: ts('archived_at'),
    // An archived object's restore: asked for at (null when none is pending), readable until.
    restoreRequestedAt: ts('restore_requested_at'),
    restoredUntil: ts('restored_until'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    check('blobs_ref_count_nonneg', sql`${t.refCount} >= 0`),
    check('blobs_storage_tier_known', sql`${t.storageTier} in ('standard', 'infrequent', 'archive')`),
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
    // The wire protocol the upload was created with (an upload is continued with the same one),
    // and for the IETF resumable upload draft its interop version.
    transport: text('transport').$type<'tus' | 'ietf' | 's3-direct'>().notNull().default('tus'),
    interopVersion: smallint('interop_version'),
    // What the application's pre-create hook attached (PRE_CREATE_HOOK_URL), shown in the record.
    appMetadata: jsonb('app_metadata').$type<Record<string, unknown>>(),
    // A direct-to-bucket upload's S3 multipart upload id (its key is storage_key).
    directUploadId: text('direct_upload_id'),
    // The last download (updated at most hourly); the tier sweep reads it per blob.
    lastAccessedAt: ts('last_accessed_at'),
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
    uniqueIndex('uploads_direct_upload_id_idx').on(t.directUploadId).where(sql`${t.directUploadId} is not null`),
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

/**
 * Where webhooks go. The endpoint of WEBHOOK_URL is the row `fromConfig` (upserted at start);
 * more come from the admin API. `events` null = every event. The outbox trigger on `uploads`
 * (drizzle/0004_webhook_outbox.sql) reads this table in the transaction of each status change.
 */
export const webhookEndpoints = pgTable(
  'webhook_endpoints',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    url: text('url').notNull(),
    secret: text('secret').notNull(),
    // The secret a rotation replaced: it signs too (a second `v1,` signature) until `until`
    // (null: until retired; WEBHOOK_SECRET's second secret).
    previousSecret: text('previous_secret'),
    previousSecretUntil: ts('previous_secret_until'),
    events: text('events').array(),
    enabled: boolean('enabled').notNull().default(true),
    fromConfig: boolean('from_config').notNull().default(false),
    maxAttempts: integer('max_attempts').notNull().default(13),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('webhook_endpoints_config_idx').on(t.fromConfig).where(sql`${t.fromConfig}`)],
);

/**
 * The outbox: one row per event, written by the trigger in the transaction of the change. `id` is
 * the `webhook-id` (the same on every retry); `seq` orders one file's events; `snapshot` holds the
 * upload row and its blob as they were at the change ({upload, blob}, column names as in SQL).
 */
export const webhookEvents = pgTable(
  'webhook_events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    seq: bigserial('seq', { mode: 'number' }).notNull().unique(),
    type: text('type').notNull(),
    uploadId: text('upload_id'),
    ownerId: text('owner_id'),
    occurredAt: ts('occurred_at').notNull().defaultNow(),
    snapshot: jsonb('snapshot').$type<{ upload: Record<string, unknown>; blob: Record<string, unknown> | null }>().notNull(),
  },
  (t) => [
    index('webhook_events_upload_idx').on(t.uploadId, t.seq),
    // The retention purge (WEBHOOK_RETENTION) reads the oldest events.
    index('webhook_events_occurred_idx').on(t.occurredAt),
  ],
);

export const WEBHOOK_DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type WebhookDeliveryStatus = (typeof WEBHOOK_DELIVERY_STATUSES)[number];

/** One event for one endpoint: its attempts and the last answer. */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    eventId: uuid('event_id')
      .notNull()
      .references(() => webhookEvents.id, { onDelete: 'cascade' }),
    endpointId: uuid('endpoint_id')
      .notNull()
      .references(() => webhookEndpoints.id, { onDelete: 'cascade' }),
    // Copied from the event, so the delivery job finds an (endpoint, upload)'s pending deliveries.
    uploadId: text('upload_id'),
    status: text('status').$type<WebhookDeliveryStatus>().notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    lastAttemptAt: ts('last_attempt_at'),
    responseStatus: integer('response_status'),
    responseBody: text('response_body'),
    lastError: text('last_error'),
    deliveredAt: ts('delivered_at'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    index('webhook_deliveries_endpoint_idx').on(t.endpointId, t.createdAt),
    index('webhook_deliveries_pending_idx').on(t.endpointId, t.uploadId).where(sql`${t.status} = 'pending'`),
    // An event's deliveries: the purge's check and its cascade.
    index('webhook_deliveries_event_idx').on(t.eventId),
  ],
);

export type WebhookEndpointRow = typeof webhookEndpoints.$inferSelect;
export type WebhookEventRow = typeof webhookEvents.$inferSelect;
export type WebhookDeliveryRow = typeof webhookDeliveries.$inferSelect;

export const PREVIEW_STATUSES = ['ready', 'failed'] as const;
export type PreviewStatus = (typeof PREVIEW_STATUSES)[number];

/**
 * Previews of a blob's content (light map, brightness series, ...), one row per (content, kind,
 * options hash): new options make new rows beside the old. `failed` rows say why a preview is
 * missing. Rows go with their blob; the objects they name are then orphans the sweep removes.
 */
export const previews = pgTable(
  'previews',
  {
    sha256: text('sha256')
      .notNull()
      .references(() => blobs.sha256, { onDelete: 'cascade' }),
    kind: text('kind').notNull(),
    optionsHash: text('options_hash').notNull(),
    status: text('status').$type<PreviewStatus>().notNull(),
    // previews/<sha256>-<kind>-<options hash>, beside the blobs in the same storage.
    storageKey: text('storage_key'),
    contentType: text('content_type'),
    size: bytes('size'),
    error: text('error'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.sha256, t.kind, t.optionsHash] }),
    check('previews_status_known', sql`${t.status} in ('ready', 'failed')`),
    check('previews_ready_has_object', sql`${t.status} <> 'ready' or ${t.storageKey} is not null`),
    uniqueIndex('previews_storage_key_idx').on(t.storageKey).where(sql`${t.storageKey} is not null`),
  ],
);

export type PreviewRow = typeof previews.$inferSelect;
