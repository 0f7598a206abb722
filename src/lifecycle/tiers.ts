// Storage tiers: blobs nobody downloaded for TIER_INFREQUENT_AFTER move to STANDARD_IA, for
// TIER_ARCHIVE_AFTER to the archive class (GLACIER or DEEP_ARCHIVE), by a server-side copy of the
// object onto its own key; an archived blob is read again after a restore (RestoreObject). The
// lifecycle sweep plans and applies the moves; downloads and POST /api/files/:id/restore start
// restores; the restore_blob task polls them. Quota counts bytes whatever the tier.
import type { Db } from '../db/client.js';
import type { BlobRow, StorageTier } from '../db/schema.js';
import { recordRestored, recordRestoreRequest, recordTierMove, tierCandidates } from '../db/tiers.js';
import type { StorageClasses } from '../storage/types.js';

export interface TierPolicy {
  /** Since the last access; null: never. */
  infrequentAfterMs: number | null;
  archiveAfterMs: number | null;
  archiveClass: 'GLACIER' | 'DEEP_ARCHIVE';
  restoreDays: number;
}

export interface TierMove {
  sha256: string;
  storageKey: string;
  bytes: number;
  from: StorageTier;
  to: StorageTier;
}

/** Blobs moved per sweep at most. */
const MOVE_BATCH = 1000;
/** Until an archived object is readable after a restore starts (S3's standard retrieval: 3–5 h, 12 h for deep archive). */
const RESTORE_WAIT_SECONDS = { GLACIER: 5 * 3600, DEEP_ARCHIVE: 12 * 3600 } as const;
/** How often the restore_blob task asks S3 whether a restore is done. */
export const RESTORE_POLL_MS = 15 * 60_000;

const ORDER: Record<StorageTier, number> = { standard: 0, infrequent: 1, archive: 2 };

export function storageClassOf(tier: StorageTier, policy: TierPolicy): string {
  return tier === 'standard' ? 'STANDARD' : tier === 'infrequent' ? 'STANDARD_IA' : policy.archiveClass;
}

/** The tier a blob last accessed at `lastAccessAt` belongs in now, if colder than `current` (tiers only get colder here). */
export function targetTier(current: StorageTier, lastAccessAt: Date, now: Date, policy: TierPolicy): StorageTier | null {
  const idle = now.getTime() - lastAccessAt.getTime();
  const due: StorageTier | null =
    policy.archiveAfterMs !== null && idle >= policy.archiveAfterMs
      ? 'archive'
      : policy.infrequentAfterMs !== null && idle >= policy.infrequentAfterMs
        ? 'infrequent'
        : null;
  return due !== null && ORDER[due] > ORDER[current] ? due : null;
}

/** The moves a sweep at `now` makes: the dry run lists exactly these. */
export async function planTierMoves(db: Db, policy: TierPolicy, now: Date): Promise<TierMove[]> {
  const thresholds = [policy.infrequentAfterMs, policy.archiveAfterMs].filter((ms): ms is number => ms !== null);
  if (thresholds.length === 0) return [];
  const coldBefore = new Date(now.getTime() - Math.min(...thresholds));
  const moves: TierMove[] = [];
  for (const blob of await tierCandidates(db, coldBefore, MOVE_BATCH)) {
    const to = targetTier(blob.tier, blob.lastAccessAt, now, policy);
    if (to) moves.push({ sha256: blob.sha256, storageKey: blob.storageKey, bytes: blob.size, from: blob.tier, to });
  }
  return moves;
}

/**
 * Copies the object into the target class, checks the bucket says so, then records it. A crash
 * between the copy and the record leaves a readable object in the new class: the next sweep
 * finds it there (changeClass is then a no-op) and records it. Nothing is deleted.
 */
export async function applyTierMove(deps: { db: Db; classes: StorageClasses }, move: TierMove, policy: TierPolicy): Promise<boolean> {
  const storageClass = storageClassOf(move.to, policy);
  await deps.classes.changeClass(move.storageKey, storageClass);
  const object = await deps.classes.inspect(move.storageKey);
  if (object?.storageClass !== storageClass) {
    throw new Error(`object ${move.storageKey} is in ${object?.storageClass ?? 'no'} storage class after the copy to ${storageClass}`);
  }
  return recordTierMove(deps.db, move.sha256, move.from, move.to);
}

/** Whether the blob's bytes can be read now: not archived, or a restored copy is there. */
export function isReadable(blob: BlobRow, now: Date): boolean {
  return blob.storageTier !== 'archive' || (blob.restoredUntil !== null && blob.restoredUntil > now);
}

export type RestoreState = { status: 'available' } | { status: 'restoring'; retryAfterSeconds: number };

/** Asks the bucket for a restored copy of an archived blob and records it (the poll job then waits for it). */
export async function startRestore(
  deps: { db: Db; classes: StorageClasses },
  blob: BlobRow,
  policy: TierPolicy,
  actor: string,
): Promise<RestoreState> {
  const answer = await deps.classes.restore(blob.storageKey, policy.restoreDays);
  if (answer === 'restored') {
    const object = await deps.classes.inspect(blob.storageKey);
    if (object?.restore && !object.restore.ongoing) {
      await recordRestored(deps.db, blob.sha256, object.restore.expiresAt);
      return { status: 'available' };
    }
  }
  await recordRestoreRequest(deps.db, blob.sha256, actor);
  return { status: 'restoring', retryAfterSeconds: RESTORE_WAIT_SECONDS[policy.archiveClass] };
}
