// Storage quotas, race-safe: every change locks the owner's row, so N parallel creations are
// serialised and can never together exceed a limit. Each upload moves through
// none → reserved → committed → released (or reserved → released), and each move is guarded by
// the current state, so a retried job or a repeated request never counts twice.
//
// - Reserved at creation from Upload-Length (or when a deferred length is declared).
// - Committed (reservation turned into usage) when the file becomes `ready` (processing.ts, in
//   the same statement as the status). A de-duplicated file counts in full for
//   its owner (logical bytes); the physical saving is reported separately.
// - Released when an unfinished upload is terminated or expires, when the file is rejected,
//   infected or failed, and when a ready file is deleted.
// - The monthly allowance counts bytes accepted for upload in the calendar month (UTC); bytes of
//   uploads that never became a file are given back, deleting a file later does not.
//
// The limits and their arithmetic (overrides or defaults, what a reservation may take, the month's
// allowance, the room left for an upload of unknown length) are SQL only (`rules`, `reservation`),
// checked on the locked owner row; TypeScript only words a refusal.
import { eq, sql, type SQL } from 'drizzle-orm';
import { AppError } from '../errors.js';
import { audit, AUDIT } from './audit.js';
import type { Db } from './client.js';
import { owners, uploads, type OwnerRow, type UploadRow } from './schema.js';
import type { Executor } from './tx.js';

export interface QuotaDefaults {
  maxBytes: number | null;
  maxFiles: number | null;
  maxFileSize: number | null;
  monthlyBytes: number | null;
  /** Abuse bounds for every owner: unfinished uploads (partials included) and the bytes they hold. */
  maxUnfinishedUploads?: number | null;
  maxReservedBytes?: number | null;
}

export interface QuotaLimits {
  maxBytes: number | null;
  maxFiles: number | null;
  maxFileSize: number | null;
  monthlyBytes: number | null;
}

export interface QuotaUsage extends QuotaLimits {
  usedBytes: number;
  fileCount: number;
  reservedBytes: number;
  reservedFiles: number;
  monthBytes: number;
  monthStart: string;
}

/** First day of the current month (UTC) as YYYY-MM-DD. */
export function currentMonthStart(now = new Date()): string {
  return `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, '0')}-01`;
}

/**
 * The quota rules, once, in SQL over an `owners` row aliased `o`: an owner's limits are their
 * overrides or the defaults; the monthly allowance counts the current month (UTC) only.
 */
function rules(defaults: QuotaDefaults) {
  const month = currentMonthStart();
  const limit = (column: string, fallback: number | null) => sql`coalesce(o.${sql.identifier(column)}, ${fallback}::bigint)`;
  return {
    month,
    maxBytes: limit('max_bytes', defaults.maxBytes),
    maxFiles: limit('max_files', defaults.maxFiles),
    maxFileSize: limit('max_file_size', defaults.maxFileSize),
    monthlyBytes: limit('monthly_bytes', defaults.monthlyBytes),
    maxReservedBytes: sql`${defaults.maxReservedBytes ?? null}::bigint`,
    maxUnfinishedUploads: sql`${defaults.maxUnfinishedUploads ?? null}::int`,
    monthSoFar: sql`(case when o.month_start = ${month}::date then o.month_bytes else 0 end)`,
  };
}

function nextMonthStart(now = new Date()): string {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString();
}

/** What a reservation asks of one owner, as SQL expressions. */
export interface Demand {
  bytes: SQL;
  /** File slots: 0 for a partial upload (tus concatenation), which is not a file. */
  files: SQL;
  /** The largest single file asked for; null when its length is deferred. */
  largest: SQL;
  /** Upload records made (partials included), for QUOTA_MAX_UNFINISHED_UPLOADS. */
  uploads: SQL;
}

type Refusal =
  | 'QUOTA_FILE_SIZE_EXCEEDED'
  | 'QUOTA_EXCEEDED'
  | 'QUOTA_FILES_EXCEEDED'
  | 'QUOTA_MONTHLY_EXCEEDED'
  | 'RESERVATION_EXCEEDED'
  | 'TOO_MANY_UNFINISHED_UPLOADS';

/**
 * A reservation as the SET and the WHERE of an update of `owners o`: the conditions are checked on
 * the row the UPDATE locks, so parallel creations cannot overshoot a limit between a read and a
 * write. Used for one upload, for a batch per owner (insertUploadRecords) and for an upload whose
 * reservation grows or shrinks (negative `bytes`: never refused). `refusal` names the first limit
 * the demand would pass (the owner's own quota first, then the abuse bounds), null if none.
 */
export function reservation(demand: Demand, defaults: QuotaDefaults): { set: SQL; allowed: SQL; refusal: SQL } {
  const { bytes, files, largest, uploads: made } = demand;
  const r = rules(defaults);
  const refusal = sql`(case
    when ${largest} is not null and ${r.maxFileSize} is not null and ${largest} > ${r.maxFileSize}
      then 'QUOTA_FILE_SIZE_EXCEEDED'
    when ${r.maxBytes} is not null and o.used_bytes + o.reserved_bytes + ${bytes} > ${r.maxBytes}
      then 'QUOTA_EXCEEDED'
    when ${files} > 0 and ${r.maxFiles} is not null and o.file_count + o.reserved_files + ${files} > ${r.maxFiles}
      then 'QUOTA_FILES_EXCEEDED'
    when ${r.monthlyBytes} is not null and ${r.monthSoFar} + ${bytes} > ${r.monthlyBytes}
      then 'QUOTA_MONTHLY_EXCEEDED'
    when ${r.maxReservedBytes} is not null and ${bytes} > 0 and o.reserved_bytes + ${bytes} > ${r.maxReservedBytes}
      then 'RESERVATION_EXCEEDED'
    when ${r.maxUnfinishedUploads} is not null and ${made} > 0
         and ${unfinishedUploads(sql`o.id`)} + ${made} > ${r.maxUnfinishedUploads}
      then 'TOO_MANY_UNFINISHED_UPLOADS'
  end)`;
  return {
    set: sql`
      reserved_bytes = o.reserved_bytes + ${bytes},
      reserved_files = o.reserved_files + ${files},
      month_bytes = greatest(0, ${r.monthSoFar} + ${bytes}),
      month_start = ${r.month}::date`,
    allowed: sql`(${refusal} is null)`,
    refusal,
  };
}

/**
 * An owner's unfinished uploads. Counted from the statement's snapshot: parallel creations of one
 * owner may pass it together, so the bound can be exceeded by the requests in flight at once
 * (themselves bounded by OWNER_MAX_CONCURRENT_UPLOADS).
 */
function unfinishedUploads(ownerId: SQL): SQL {
  return sql`(select count(*)::int from uploads u where u.owner_id = ${ownerId} and u.status = 'uploading')`;
}

/** The demand of one upload: `bytes` reserved, `files` slots, a file of `size` (or of `bytes` when deferred). */
function demandOf(bytes: number, files: 0 | 1, size: number | null, uploads: 0 | 1): Demand {
  return { bytes: sql`${bytes}::bigint`, files: sql`${files}::int`, largest: sql`${size ?? (bytes || null)}::bigint`, uploads: sql`${uploads}::int` };
}

/**
 * The common case of one upload's reservation in one statement. Returns the owner's id when
 * reserved, no row when refused (or when the owner has no row yet).
 */
function reservationStatement(ownerId: string, size: number | null, bytes: number, files: 0 | 1, defaults: QuotaDefaults): SQL {
  const { set, allowed } = reservation(demandOf(bytes, files, size, 1), defaults);
  return sql`update owners o set ${set} where o.id = ${ownerId} and ${allowed} returning o.id`;
}

interface RefusalFacts {
  refusal: Refusal | null;
  max_bytes: number | null;
  max_files: number | null;
  max_file_size: number | null;
  monthly_bytes: number | null;
  max_reserved_bytes: number | null;
  max_unfinished_uploads: number | null;
  used_bytes: number;
  reserved_bytes: number;
  file_count: number;
  reserved_files: number;
  month_bytes: number;
  available: number | null;
  unfinished: number;
}

/**
 * Locks the owner's row and reserves `demand` on it, or throws the error that says which limit it
 * would pass (with the numbers, as the locked row has them).
 */
async function reserveOrRefuse(
  tx: Executor,
  ownerId: string,
  demand: Demand,
  defaults: QuotaDefaults,
  requested: { bytes: number; files: number; fileSize: number | null },
): Promise<void> {
  const r = rules(defaults);
  const { set, refusal } = reservation(demand, defaults);
  const [facts] = await tx.execute<RefusalFacts & Record<string, unknown>>(sql`
    select ${refusal} as refusal,
           ${r.maxBytes} as max_bytes, ${r.maxFiles} as max_files, ${r.maxFileSize} as max_file_size,
           ${r.monthlyBytes} as monthly_bytes, ${r.maxReservedBytes} as max_reserved_bytes,
           ${r.maxUnfinishedUploads} as max_unfinished_uploads,
           o.used_bytes, o.reserved_bytes, o.file_count, o.reserved_files, ${r.monthSoFar} as month_bytes,
           greatest(0, ${r.maxBytes} - o.used_bytes - o.reserved_bytes) as available,
           ${unfinishedUploads(sql`o.id`)} as unfinished
    from owners o where o.id = ${ownerId}
    for update`);
  if (!facts) throw new Error(`owner ${ownerId} does not exist`);
  if (facts.refusal) throw refusalError(facts.refusal, facts, requested);
  await tx.execute(sql`update owners o set ${set} where o.id = ${ownerId}`);
}

/** The error for a refused reservation: which limit, and the numbers behind it. */
function refusalError(refusal: Refusal, facts: RefusalFacts, requested: { bytes: number; files: number; fileSize: number | null }): AppError {
  switch (refusal) {
    case 'QUOTA_FILE_SIZE_EXCEEDED':
      return new AppError(413, refusal, `a single file may be at most ${facts.max_file_size} bytes`, {
        limit: facts.max_file_size,
        requested: requested.fileSize,
      });
    case 'QUOTA_EXCEEDED':
      return new AppError(413, refusal, 'this upload would exceed your storage quota', {
        limit: facts.max_bytes,
        used: facts.used_bytes,
        reserved: facts.reserved_bytes,
        requested: requested.bytes,
        available: facts.available,
      });
    case 'QUOTA_FILES_EXCEEDED':
      return new AppError(403, refusal, `you may store at most ${facts.max_files} files`, {
        limit: facts.max_files,
        used: facts.file_count,
        reserved: facts.reserved_files,
        requested: requested.files,
      });
    case 'QUOTA_MONTHLY_EXCEEDED':
      return new AppError(403, refusal, 'this upload would exceed your monthly upload allowance', {
        limit: facts.monthly_bytes,
        used: facts.month_bytes,
        requested: requested.bytes,
        resetsAt: nextMonthStart(),
      });
    case 'RESERVATION_EXCEEDED':
      return new AppError(413, refusal, `your unfinished uploads may hold at most ${facts.max_reserved_bytes} bytes; finish or delete some first`, {
        limit: facts.max_reserved_bytes,
        reserved: facts.reserved_bytes,
        requested: requested.bytes,
      });
    case 'TOO_MANY_UNFINISHED_UPLOADS':
      return new AppError(429, refusal, `you may have at most ${facts.max_unfinished_uploads} unfinished uploads; finish or delete some first`, {
        limit: facts.max_unfinished_uploads,
        unfinished: facts.unfinished,
      });
  }
}

/**
 * Reserves a new upload's bytes (its length; when that is deferred, the file slot and the
 * `bytes` its creation request brings) and returns the number of bytes reserved.
 */
export async function reserveForUpload(
  tx: Executor,
  ownerId: string,
  size: number | null,
  defaults: QuotaDefaults,
  { files = 1, bytes = size ?? 0 }: { files?: 0 | 1; bytes?: number } = {},
): Promise<number> {
  const [reserved] = await tx.execute<{ id: string }>(reservationStatement(ownerId, size, bytes, files, defaults));
  if (reserved) return bytes;

  // Refused, or a new owner: look at the locked row to say which limit, or to reserve for the
  // owner just created.
  await tx.insert(owners).values({ id: ownerId }).onConflictDoNothing();
  await reserveOrRefuse(tx, ownerId, demandOf(bytes, files, size, 1), defaults, { bytes, files, fileSize: size ?? (bytes || null) });
  return bytes;
}

/** A deferred length became known: the upload now holds exactly those bytes (or the length is refused). */
export async function reserveDeclaredLength(
  tx: Executor,
  upload: UploadRow,
  size: number,
  defaults: QuotaDefaults,
): Promise<void> {
  await adjustReservation(tx, upload.id, size, defaults);
  await tx.update(uploads).set({ size }).where(eq(uploads.id, upload.id));
}

/**
 * Makes an unfinished upload hold `bytes` in its owner's reservation. For an upload of unknown
 * length this follows the bytes as they arrive: raised (and checked against every limit, as if it
 * were a file of that size) before a body is stored, lowered to what was stored afterwards.
 */
export async function adjustReservation(tx: Executor, uploadId: string, bytes: number, defaults: QuotaDefaults): Promise<void> {
  const upload = await lockUploadQuota(tx, uploadId);
  if (!upload || upload.quotaState !== 'reserved') return;
  const delta = bytes - upload.reservedBytes;
  if (delta === 0) return;
  // Growing is checked against every limit, as a file of `bytes`; shrinking never is.
  const demand = demandOf(delta, 0, bytes, 0);
  if (delta > 0) await reserveOrRefuse(tx, upload.ownerId, demand, defaults, { bytes: delta, files: 0, fileSize: bytes });
  else await tx.execute(sql`update owners o set ${reservation(demand, defaults).set} where o.id = ${upload.ownerId}`);
  await tx.update(uploads).set({ reservedBytes: bytes }).where(eq(uploads.id, uploadId));
}

/**
 * How many bytes an upload of unknown length could hold now under its owner's limits, or null
 * when nothing but the server's size limit bounds it.
 */
export async function reservableBytes(db: Executor, upload: Pick<UploadRow, 'ownerId' | 'reservedBytes'>, defaults: QuotaDefaults): Promise<number | null> {
  const r = rules(defaults);
  const held = sql`${upload.reservedBytes}::bigint`;
  // least() skips nulls (no such limit): null only when no limit applies.
  const [row] = await db.execute<{ room: number | null }>(sql`
    select least(
      ${r.maxFileSize},
      ${r.maxBytes} - o.used_bytes - o.reserved_bytes + ${held},
      ${r.maxReservedBytes} - o.reserved_bytes + ${held},
      ${r.monthlyBytes} - ${r.monthSoFar} + ${held}
    ) as room
    from owners o where o.id = ${upload.ownerId}`);
  if (!row || row.room === null) return null;
  return Math.max(0, row.room);
}

async function lockOwner(tx: Executor, ownerId: string): Promise<OwnerRow> {
  const [owner] = await tx.select().from(owners).where(eq(owners.id, ownerId)).for('update');
  if (!owner) throw new Error(`owner ${ownerId} does not exist`);
  return owner;
}

async function lockUploadQuota(tx: Executor, uploadId: string) {
  const [row] = await tx
    .select({
      id: uploads.id,
      ownerId: uploads.ownerId,
      quotaState: uploads.quotaState,
      reservedBytes: uploads.reservedBytes,
      size: uploads.size,
      createdAt: uploads.createdAt,
      uploadConcat: uploads.uploadConcat,
    })
    .from(uploads)
    .where(eq(uploads.id, uploadId))
    .for('update');
  return row;
}

/**
 * Gives back what an upload holds: its reservation (it never became a file) or its usage (a
 * ready file being deleted). Guarded by the upload's quota state, so a second call is a no-op.
 */
export async function releaseQuota(tx: Executor, uploadId: string): Promise<void> {
  const upload = await lockUploadQuota(tx, uploadId);
  if (!upload || (upload.quotaState !== 'reserved' && upload.quotaState !== 'committed')) return;
  const owner = await lockOwner(tx, upload.ownerId);
  if (upload.quotaState === 'reserved') {
    // Bytes of an upload that never became a file go back to the monthly allowance too, if
    // that allowance is still the month the upload was created in.
    const sameMonth = owner.monthStart === currentMonthStart(upload.createdAt);
    await tx
      .update(owners)
      .set({
        reservedBytes: sql`${owners.reservedBytes} - ${upload.reservedBytes}`,
        // A partial upload (tus concatenation) holds bytes but no file slot.
        reservedFiles: sql`${owners.reservedFiles} - ${upload.uploadConcat === 'partial' ? 0 : 1}`,
        ...(sameMonth ? { monthBytes: sql`greatest(0, ${owners.monthBytes} - ${upload.reservedBytes})` } : {}),
      })
      .where(eq(owners.id, upload.ownerId));
  } else {
    await tx
      .update(owners)
      .set({
        usedBytes: sql`${owners.usedBytes} - ${upload.size ?? 0}`,
        fileCount: sql`${owners.fileCount} - 1`,
      })
      .where(eq(owners.id, upload.ownerId));
  }
  await tx.update(uploads).set({ quotaState: 'released' }).where(eq(uploads.id, uploadId));
}

export async function getQuota(db: Executor, ownerId: string, defaults: QuotaDefaults): Promise<QuotaUsage & { ownerId: string }> {
  const r = rules(defaults);
  const [row] = await db.execute<{ [K in keyof QuotaUsage]: QuotaUsage[K] } & Record<string, unknown>>(sql`
    select ${r.maxBytes} as "maxBytes", ${r.maxFiles} as "maxFiles", ${r.maxFileSize} as "maxFileSize",
           ${r.monthlyBytes} as "monthlyBytes",
           coalesce(o.used_bytes, 0) as "usedBytes", coalesce(o.file_count, 0) as "fileCount",
           coalesce(o.reserved_bytes, 0) as "reservedBytes", coalesce(o.reserved_files, 0) as "reservedFiles",
           coalesce(${r.monthSoFar}, 0) as "monthBytes"
    from (select 1) one left join owners o on o.id = ${ownerId}`);
  return {
    ownerId,
    maxBytes: row!.maxBytes,
    maxFiles: row!.maxFiles,
    maxFileSize: row!.maxFileSize,
    monthlyBytes: row!.monthlyBytes,
    usedBytes: row!.usedBytes,
    fileCount: row!.fileCount,
    reservedBytes: row!.reservedBytes,
    reservedFiles: row!.reservedFiles,
    monthBytes: row!.monthBytes,
    monthStart: r.month,
  };
}

export type QuotaOverrides = Partial<QuotaLimits>;

/** Per-owner overrides (null = back to the default); audited. */
export async function updateQuota(
  db: Db,
  ownerId: string,
  overrides: QuotaOverrides,
  defaults: QuotaDefaults,
  actor: string,
): Promise<QuotaUsage & { ownerId: string }> {
  return db.transaction(async (tx) => {
    await tx.insert(owners).values({ id: ownerId }).onConflictDoNothing();
    const before = await lockOwner(tx, ownerId);
    const changes: QuotaOverrides = {};
    for (const key of ['maxBytes', 'maxFiles', 'maxFileSize', 'monthlyBytes'] as const) {
      if (overrides[key] !== undefined) changes[key] = overrides[key];
    }
    if (Object.keys(changes).length > 0) await tx.update(owners).set(changes).where(eq(owners.id, ownerId));
    await audit(tx, {
      action: AUDIT.quotaChanged,
      ownerId,
      actor,
      details: {
        before: { maxBytes: before.maxBytes, maxFiles: before.maxFiles, maxFileSize: before.maxFileSize, monthlyBytes: before.monthlyBytes },
        changes,
      },
    });
    return getQuota(tx, ownerId, defaults);
  });
}
