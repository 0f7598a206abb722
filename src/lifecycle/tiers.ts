// Storage tiers: blobs nobody downloaded for TIER_INFREQUENT_AFTER move to STANDARD_IA, for
// TIER_ARCHIVE_AFTER to the archive class (GLACIER or DEEP_ARCHIVE), by a server-side copy of the
// object onto its own key (or, local files, a verified copy into the archive bucket:
// src/storage/archive.ts); an archived blob is read again after a restore (RestoreObject). The
// lifecycle sweep plans and applies the moves; downloads and POST /api/files/:id/restore start
// restores; the restore_blob task polls them. Quota counts bytes whatever the tier.
import { TIER_LIST_PRICES, type Kind } from '../config/index.js';
import type { Db } from '../db/client.js';
import type { BlobRow, StorageTier } from '../db/schema.js';
import { recordRestored, recordRestoreRequest, recordTierMove, tierCandidates, tierTotals } from '../db/tiers.js';
import type { StorageClasses } from '../storage/types.js';

export interface TierPolicy {
  /** Since the last access; null: never. */
  infrequentAfterMs: number | null;
  archiveAfterMs: number | null;
  archiveClass: 'GLACIER' | 'DEEP_ARCHIVE';
  restoreDays: number;
  /** Per-kind durations (TIER_KIND_*_AFTER); a duration left out is the global one, null: never. */
  byKind?: Partial<Record<Kind, { infrequentAfterMs?: number | null; archiveAfterMs?: number | null }>>;
  /** USD per GiB-month, for the cost estimate of the analytics. */
  pricesPerGibMonth?: Record<StorageTier, number>;
}

/** The durations that apply to a blob of `kind`. */
export function durationsFor(policy: TierPolicy, kind?: string): { infrequentAfterMs: number | null; archiveAfterMs: number | null } {
  const own = kind ? policy.byKind?.[kind as Kind] : undefined;
  return {
    infrequentAfterMs: own && 'infrequentAfterMs' in own ? (own.infrequentAfterMs ?? null) : policy.infrequentAfterMs,
    archiveAfterMs: own && 'archiveAfterMs' in own ? (own.archiveAfterMs ?? null) : policy.archiveAfterMs,
  };
}

/** The policy a backend can carry out: local disk with an archive bucket has no infrequent-access class. */
export function policyFor(classes: StorageClasses, policy: TierPolicy): TierPolicy {
  if (!classes.archiveOnly) return policy;
  const byKind: NonNullable<TierPolicy['byKind']> = {};
  for (const [kind, own] of Object.entries(policy.byKind ?? {})) byKind[kind as Kind] = { ...own, infrequentAfterMs: null };
  return { ...policy, infrequentAfterMs: null, byKind };
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
export function targetTier(current: StorageTier, lastAccessAt: Date, now: Date, policy: TierPolicy, kind?: string): StorageTier | null {
  const idle = now.getTime() - lastAccessAt.getTime();
  const { infrequentAfterMs, archiveAfterMs } = durationsFor(policy, kind);
  const due: StorageTier | null =
    archiveAfterMs !== null && idle >= archiveAfterMs
      ? 'archive'
      : infrequentAfterMs !== null && idle >= infrequentAfterMs
        ? 'infrequent'
        : null;
  return due !== null && ORDER[due] > ORDER[current] ? due : null;
}

/** The moves a sweep at `now` makes: the dry run lists exactly these. */
export async function planTierMoves(db: Db, policy: TierPolicy, now: Date): Promise<TierMove[]> {
  const perKind = Object.values(policy.byKind ?? {}).flatMap((own) => [own.infrequentAfterMs, own.archiveAfterMs]);
  const thresholds = [policy.infrequentAfterMs, policy.archiveAfterMs, ...perKind].filter((ms): ms is number => typeof ms === 'number');
  if (thresholds.length === 0) return [];
  const coldBefore = new Date(now.getTime() - Math.min(...thresholds));
  const moves: TierMove[] = [];
  for (const blob of await tierCandidates(db, coldBefore, MOVE_BATCH)) {
    const to = targetTier(blob.tier, blob.lastAccessAt, now, policy, blob.kind);
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
  await deps.classes.changeClass(move.storageKey, storageClass, { sha256: move.sha256, size: move.bytes });
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

const LIST_PRICES: Record<StorageTier, number> = {
  standard: TIER_LIST_PRICES.standard,
  infrequent: TIER_LIST_PRICES.infrequent,
  archive: TIER_LIST_PRICES.glacier,
};

const round6 = (dollars: number) => Math.round(dollars * 1e6) / 1e6;
const monthlyCost = (bytes: number, pricePerGibMonth: number) => round6((bytes / 2 ** 30) * pricePerGibMonth);

/**
 * What is where and what it costs: per tier the stored objects (shared content once), their bytes,
 * the files using them and the estimated monthly cost; the moves the next sweep would make (the
 * dry run's list; none without storage classes); what de-duplication saves.
 */
export async function tierAnalytics(db: Db, policy: TierPolicy, classes: StorageClasses | undefined, now: Date) {
  const prices = policy.pricesPerGibMonth ?? LIST_PRICES;
  const totals = await tierTotals(db);
  const tiers = totals.map(({ referencedBytes: _, ...totals }) => ({
    ...totals,
    pricePerGibMonth: prices[totals.tier],
    monthlyCost: monthlyCost(totals.bytes, prices[totals.tier]),
  }));
  const moves = classes ? await planTierMoves(db, policyFor(classes, policy), now) : [];
  const savedBytes = totals.reduce((sum, t) => sum + t.referencedBytes - t.bytes, 0);
  return {
    tiers,
    monthlyCost: round6(tiers.reduce((sum, t) => sum + t.monthlyCost, 0)),
    candidates: {
      count: moves.length,
      bytes: moves.reduce((sum, m) => sum + m.bytes, 0),
      moves: moves.map(({ storageKey: _, ...move }) => move),
    },
    deduplication: {
      savedBytes,
      savedMonthlyCost: round6(totals.reduce((sum, t) => sum + monthlyCost(t.referencedBytes - t.bytes, prices[t.tier]), 0)),
    },
  };
}
