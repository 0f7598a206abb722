// Storage-tier records: which blobs the sweep may move, the moves and restores it records, and
// the last-download stamp. Tiers belong to blobs (one object, shared by every reference); the
// last access is per upload (an owner sees only their own downloads) and a blob is as cold as its
// warmest reference.
import { and, eq, isNull, lt, or, sql } from 'drizzle-orm';
import { CHANNEL } from '../events/upload-events.js';
import { audit, AUDIT } from './audit.js';
import type { Db } from './client.js';
import { enqueueJob } from './jobs.js';
import { recordBlobEvent } from './webhooks.js';
import { blobs, STORAGE_TIERS, uploads, type StorageTier } from './schema.js';

/** Downloads stamp `last_accessed_at` at most this often (a download is then no write). */
export const ACCESS_STAMP_INTERVAL_MS = 3_600_000;

export interface TierCandidate {
  sha256: string;
  size: number;
  storageKey: string;
  tier: StorageTier;
  kind: string;
  /** The latest download (or, never downloaded, the latest ready time) over its references. */
  lastAccessAt: Date;
}

/**
 * Blobs below `tier` 'archive' whose every reference is `ready` and none was accessed since
 * `before`; quarantined and unreferenced blobs never move. Oldest first, at most `limit`.
 */
export async function tierCandidates(db: Db, before: Date, limit: number): Promise<TierCandidate[]> {
  const rows = await db.execute<{ sha256: string; size: string | number; storage_key: string; storage_tier: StorageTier; kind: string; last_access: string }>(sql`
    select b.sha256, b.size, b.storage_key, b.storage_tier, b.kind,
           max(coalesce(u.last_accessed_at, u.ready_at, u.created_at)) as last_access
    from blobs b
    join uploads u on u.blob_sha256 = b.sha256
    where b.storage_tier <> 'archive' and b.quarantined_at is null and b.ref_count > 0
    group by b.sha256
    having bool_and(u.status = 'ready')
       and max(coalesce(u.last_accessed_at, u.ready_at, u.created_at)) < ${before.toISOString()}::timestamptz
    order by last_access, b.sha256
    limit ${limit}`);
  return rows.map((row) => ({
    sha256: row.sha256,
    size: Number(row.size),
    storageKey: row.storage_key,
    tier: row.storage_tier,
    kind: row.kind,
    lastAccessAt: new Date(row.last_access),
  }));
}

/** Records a move the storage has made; false when the blob was in another tier meanwhile. */
export async function recordTierMove(db: Db, sha256: string, from: StorageTier, to: StorageTier): Promise<boolean> {
  return db.transaction(async (tx) => {
    const moved = await tx
      .update(blobs)
      .set({ storageTier: to, archivedAt: to === 'archive' ? new Date() : null })
      .where(and(eq(blobs.sha256, sha256), eq(blobs.storageTier, from)))
      .returning({ sha256: blobs.sha256 });
    if (moved.length === 0) return false;
    await audit(tx, { action: AUDIT.tierMoved, actor: 'lifecycle', details: { sha256, from, to } });
    return true;
  });
}

/**
 * Notes that a restore of an archived blob was asked for and enqueues the job that polls it, in
 * one transaction (one poll job per blob: its job key).
 */
export async function recordRestoreRequest(db: Db, sha256: string, actor: string): Promise<void> {
  await db.transaction(async (tx) => {
    const requested = await tx
      .update(blobs)
      .set({ restoreRequestedAt: new Date() })
      .where(and(eq(blobs.sha256, sha256), eq(blobs.storageTier, 'archive'), isNull(blobs.restoreRequestedAt)))
      .returning({ sha256: blobs.sha256 });
    if (requested.length > 0) await audit(tx, { action: AUDIT.restoreRequested, actor, details: { sha256 } });
    // Also for a pending request: a poll job that gave up is replaced, a scheduled one kept.
    await enqueueJob(tx, 'restore_blob', { sha256 }, { jobKeyMode: 'preserve_run_at' });
  });
}

/**
 * The restored copy is readable until `until`; the pending request is done. Each ready file of the
 * blob is announced on commit, as status changes are (drizzle/0001_upload_events.sql): the file's
 * event stream sends `restored`, the owner's a `status` with the fresh record; webhook endpoints
 * get `file.restored`.
 */
export async function recordRestored(db: Db, sha256: string, until: Date | null): Promise<void> {
  await db.transaction(async (tx) => {
    const restored = await tx
      .update(blobs)
      .set({ restoredUntil: until, restoreRequestedAt: null })
      .where(and(eq(blobs.sha256, sha256), eq(blobs.storageTier, 'archive')))
      .returning({ sha256: blobs.sha256 });
    if (restored.length === 0) return;
    await audit(tx, { action: AUDIT.restored, actor: 'lifecycle', details: { sha256, restoredUntil: until?.toISOString() ?? null } });
    await tx.execute(sql`
      select pg_notify(${CHANNEL}, json_build_object('type', 'restored', 'id', id, 'ownerId', owner_id, 'status', status)::text)
      from uploads where blob_sha256 = ${sha256} and status = 'ready'`);
    // …and as a `file.restored` webhook per file, in this transaction (the outbox).
    await recordBlobEvent(tx, 'file.restored', sha256);
  });
}

/** Stamps a download unless the last stamp is recent (callers skip the call then, see isAccessStale). */
export async function stampAccess(db: Db, uploadId: string, now: Date): Promise<void> {
  const staleBefore = new Date(now.getTime() - ACCESS_STAMP_INTERVAL_MS);
  await db
    .update(uploads)
    .set({ lastAccessedAt: now })
    .where(and(eq(uploads.id, uploadId), or(isNull(uploads.lastAccessedAt), lt(uploads.lastAccessedAt, staleBefore))));
}

export function isAccessStale(lastAccessedAt: Date | null, now: Date): boolean {
  return lastAccessedAt === null || now.getTime() - lastAccessedAt.getTime() >= ACCESS_STAMP_INTERVAL_MS;
}

export interface TierTotals {
  tier: StorageTier;
  /** Stored objects (each shared blob once) and their bytes. */
  objects: number;
  bytes: number;
  /** Files referencing them. */
  files: number;
  /** What the files would take without de-duplication (each file's size). */
  referencedBytes: number;
}

/** What is stored in each tier, every tier listed (zeros included). */
export async function tierTotals(db: Db): Promise<TierTotals[]> {
  const rows = await db.execute<{ tier: StorageTier; objects: number; bytes: string | number; files: number; referenced: string | number }>(sql`
    select storage_tier as tier, count(*)::int as objects, sum(size) as bytes, sum(ref_count)::int as files,
           sum(ref_count * size) as referenced
    from blobs where ref_count > 0
    group by storage_tier`);
  const byTier = new Map(rows.map((row) => [row.tier, row]));
  return STORAGE_TIERS.map((tier) => {
    const row = byTier.get(tier);
    return {
      tier,
      objects: row?.objects ?? 0,
      bytes: Number(row?.bytes ?? 0),
      files: row?.files ?? 0,
      referencedBytes: Number(row?.referenced ?? 0),
    };
  });
}
