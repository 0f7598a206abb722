// Storage quotas, race-safe: every change locks the owner's row, so N parallel creations are
// serialised and can never together exceed a limit. Each upload moves through
// none → reserved → committed → released (or reserved → released), and each move is guarded by
// the current state, so a retried job or a repeated request never counts twice.
//
// - Reserved at creation from Upload-Length (or when a deferred length is declared).
// - Committed (reservation turned into usage) when the file becomes `ready` (markReady in
//   processing.ts, in the same statement as the status). A de-duplicated file counts in full for
//   its owner (logical bytes); the physical saving is reported separately.
// - Released when an unfinished upload is terminated or expires, when the file is rejected,
//   infected or failed, and when a ready file is deleted.
// - The monthly allowance counts bytes accepted for upload in the calendar month (UTC); bytes of
//   uploads that never became a file are given back, deleting a file later does not.
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

export function effectiveLimits(owner: Pick<OwnerRow, keyof QuotaLimits>, defaults: QuotaDefaults): QuotaLimits {
  return {
    maxBytes: owner.maxBytes ?? defaults.maxBytes,
    maxFiles: owner.maxFiles ?? defaults.maxFiles,
    maxFileSize: owner.maxFileSize ?? defaults.maxFileSize,
    monthlyBytes: owner.monthlyBytes ?? defaults.monthlyBytes,
  };
}

export function usageOf(owner: OwnerRow, defaults: QuotaDefaults): QuotaUsage {
  const month = currentMonthStart();
  return {
    ...effectiveLimits(owner, defaults),
    usedBytes: owner.usedBytes,
    fileCount: owner.fileCount,
    reservedBytes: owner.reservedBytes,
    reservedFiles: owner.reservedFiles,
    monthBytes: owner.monthStart === month ? owner.monthBytes : 0,
    monthStart: month,
  };
}

async function lockOwner(tx: Executor, ownerId: string): Promise<OwnerRow> {
  const [owner] = await tx.select().from(owners).where(eq(owners.id, ownerId)).for('update');
  if (!owner) throw new Error(`owner ${ownerId} does not exist`);
  return owner;
}

/** What an owner's unfinished uploads hold, for the abuse bounds. */
interface Unfinished {
  defaults: QuotaDefaults;
  /** Unfinished uploads now, and how many more this request makes. */
  uploads: number;
  more: number;
}

/** Checks a request for `bytes` more (and `files` more) against the owner's limits. */
function checkLimits(usage: QuotaUsage, bytes: number, files: number, fileSize: number | null, unfinished?: Unfinished): void {
  if (fileSize !== null && usage.maxFileSize !== null && fileSize > usage.maxFileSize) {
    throw new AppError(413, 'QUOTA_FILE_SIZE_EXCEEDED', `a single file may be at most ${usage.maxFileSize} bytes`, {
      limit: usage.maxFileSize,
      requested: fileSize,
    });
  }
  if (usage.maxBytes !== null && usage.usedBytes + usage.reservedBytes + bytes > usage.maxBytes) {
    throw new AppError(413, 'QUOTA_EXCEEDED', 'this upload would exceed your storage quota', {
      limit: usage.maxBytes,
      used: usage.usedBytes,
      reserved: usage.reservedBytes,
      requested: bytes,
      available: Math.max(0, usage.maxBytes - usage.usedBytes - usage.reservedBytes),
    });
  }
  if (files > 0 && usage.maxFiles !== null && usage.fileCount + usage.reservedFiles + files > usage.maxFiles) {
    throw new AppError(403, 'QUOTA_FILES_EXCEEDED', `you may store at most ${usage.maxFiles} files`, {
      limit: usage.maxFiles,
      used: usage.fileCount,
      reserved: usage.reservedFiles,
      requested: files,
    });
  }
  if (usage.monthlyBytes !== null && usage.monthBytes + bytes > usage.monthlyBytes) {
    throw new AppError(403, 'QUOTA_MONTHLY_EXCEEDED', 'this upload would exceed your monthly upload allowance', {
      limit: usage.monthlyBytes,
      used: usage.monthBytes,
      requested: bytes,
      resetsAt: nextMonthStart(),
    });
  }
  // The abuse bounds last: an owner's own quota says more about why.
  const maxReserved = unfinished?.defaults.maxReservedBytes ?? null;
  if (maxReserved !== null && bytes > 0 && usage.reservedBytes + bytes > maxReserved) {
    throw new AppError(413, 'RESERVATION_EXCEEDED', `your unfinished uploads may hold at most ${maxReserved} bytes; finish or delete some first`, {
      limit: maxReserved,
      reserved: usage.reservedBytes,
      requested: bytes,
    });
  }
  const maxUnfinished = unfinished?.defaults.maxUnfinishedUploads ?? null;
  if (unfinished && maxUnfinished !== null && unfinished.more > 0 && unfinished.uploads + unfinished.more > maxUnfinished) {
    throw new AppError(429, 'TOO_MANY_UNFINISHED_UPLOADS', `you may have at most ${maxUnfinished} unfinished uploads; finish or delete some first`, {
      limit: maxUnfinished,
      unfinished: unfinished.uploads,
    });
  }
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

/**
 * A reservation as the SET and the WHERE of an update of `owners o`: the conditions are checked on
 * the row the UPDATE locks, so parallel creations cannot overshoot a limit between a read and a
 * write. Used for one upload (below) and for a batch per owner (insertUploadRecords).
 */
export function reservation(demand: Demand, defaults: QuotaDefaults): { set: SQL; allowed: SQL } {
  const { bytes, files, largest, uploads: made } = demand;
  const month = currentMonthStart();
  const limit = (column: string, fallback: number | null) => sql`coalesce(o.${sql.identifier(column)}, ${fallback}::bigint)`;
  const monthSoFar = sql`(case when o.month_start = ${month}::date then o.month_bytes else 0 end)`;
  return {
    set: sql`
      reserved_bytes = o.reserved_bytes + ${bytes},
      reserved_files = o.reserved_files + ${files},
      month_bytes = ${monthSoFar} + ${bytes},
      month_start = ${month}::date`,
    allowed: sql`
      (${largest} is null or ${limit('max_file_size', defaults.maxFileSize)} is null
       or ${largest} <= ${limit('max_file_size', defaults.maxFileSize)})
      and (${limit('max_bytes', defaults.maxBytes)} is null
           or o.used_bytes + o.reserved_bytes + ${bytes} <= ${limit('max_bytes', defaults.maxBytes)})
      and (${files} = 0 or ${limit('max_files', defaults.maxFiles)} is null
           or o.file_count + o.reserved_files + ${files} <= ${limit('max_files', defaults.maxFiles)})
      and (${limit('monthly_bytes', defaults.monthlyBytes)} is null
           or ${monthSoFar} + ${bytes} <= ${limit('monthly_bytes', defaults.monthlyBytes)})
      and (${defaults.maxReservedBytes ?? null}::bigint is null or ${bytes} = 0
           or o.reserved_bytes + ${bytes} <= ${defaults.maxReservedBytes ?? null}::bigint)
      and (${defaults.maxUnfinishedUploads ?? null}::int is null
           or ${unfinishedUploads(sql`o.id`)} + ${made} <= ${defaults.maxUnfinishedUploads ?? null}::int)`,
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

async function countUnfinished(tx: Executor, ownerId: string): Promise<number> {
  const [row] = await tx.execute<{ n: number }>(sql`select ${unfinishedUploads(sql`${ownerId}`)} as n`);
  return Number(row?.n ?? 0);
}

/**
 * The common case of one upload's reservation in one statement. Returns the owner's id when
 * reserved, no row when refused (or when the owner has no row yet).
 */
function reservationStatement(ownerId: string, size: number | null, bytes: number, files: 0 | 1, defaults: QuotaDefaults): SQL {
  const { set, allowed } = reservation(
    { bytes: sql`${bytes}::bigint`, files: sql`${files}::int`, largest: sql`${size ?? (bytes || null)}::bigint`, uploads: sql`1` },
    defaults,
  );
  return sql`update owners o set ${set} where o.id = ${ownerId} and ${allowed} returning o.id`;
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
  const owner = await lockOwner(tx, ownerId);
  const usage = usageOf(owner, defaults);
  checkLimits(usage, bytes, files, size ?? (bytes || null), { defaults, uploads: await countUnfinished(tx, ownerId), more: 1 });
  await tx
    .update(owners)
    .set({
      reservedBytes: sql`${owners.reservedBytes} + ${bytes}`,
      reservedFiles: sql`${owners.reservedFiles} + ${files}`,
      monthBytes: usage.monthBytes + bytes,
      monthStart: usage.monthStart,
    })
    .where(eq(owners.id, ownerId));
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
  const owner = await lockOwner(tx, upload.ownerId);
  const usage = usageOf(owner, defaults);
  if (delta > 0) checkLimits(usage, delta, 0, bytes, { defaults, uploads: 0, more: 0 });
  await tx
    .update(owners)
    .set({
      reservedBytes: sql`${owners.reservedBytes} + ${delta}`,
      monthBytes: Math.max(0, usage.monthBytes + delta),
      monthStart: usage.monthStart,
    })
    .where(eq(owners.id, upload.ownerId));
  await tx.update(uploads).set({ reservedBytes: bytes }).where(eq(uploads.id, uploadId));
}

/**
 * How many bytes an upload of unknown length could hold now under its owner's limits, or null
 * when nothing but the server's size limit bounds it.
 */
export async function reservableBytes(db: Executor, upload: Pick<UploadRow, 'ownerId' | 'reservedBytes'>, defaults: QuotaDefaults): Promise<number | null> {
  const [owner] = await db.select().from(owners).where(eq(owners.id, upload.ownerId));
  if (!owner) return null;
  const usage = usageOf(owner, defaults);
  const bounds = [
    usage.maxFileSize,
    usage.maxBytes === null ? null : usage.maxBytes - usage.usedBytes - usage.reservedBytes + upload.reservedBytes,
    defaults.maxReservedBytes == null ? null : defaults.maxReservedBytes - usage.reservedBytes + upload.reservedBytes,
    usage.monthlyBytes === null ? null : usage.monthlyBytes - usage.monthBytes + upload.reservedBytes,
  ].filter((bound): bound is number => bound !== null);
  return bounds.length === 0 ? null : Math.max(0, Math.min(...bounds));
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
  const [owner] = await db.select().from(owners).where(eq(owners.id, ownerId));
  const row: OwnerRow = owner ?? {
    id: ownerId,
    createdAt: new Date(),
    maxBytes: null,
    maxFiles: null,
    maxFileSize: null,
    monthlyBytes: null,
    usedBytes: 0,
    fileCount: 0,
    reservedBytes: 0,
    reservedFiles: 0,
    monthBytes: 0,
    monthStart: null,
  };
  return { ownerId, ...usageOf(row, defaults) };
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
