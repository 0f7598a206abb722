// The lifecycle sweep: what the hourly job (tasks/lifecycle.ts) and the admin cleanup endpoint
// run. A dry run computes exactly the same plan and stops before acting, so its report is what a
// real run at that moment would do.
//   - expired:     unfinished uploads past their expiry (activity extends it) → `expired`, bytes
//                  removed, reservation released;
//   - rejected:    rejected files older than REJECTED_RETENTION → purged;
//   - quarantined: infected files older than QUARANTINE_RETENTION → purged (quarantined bytes go);
//   - blobs:       content blobs nobody references → removed with their bytes;
//   - orphans:     stored objects no record knows (older than ORPHAN_GRACE) → removed; an archive
//                  bucket's too (its storage lists them, src/storage/archive.ts);
//   - webhookEvents: events older than WEBHOOK_RETENTION delivered everywhere → purged (counted);
//   - tierMoves:   blobs not accessed for TIER_*_AFTER → a colder storage class (S3, or the
//                  archive bucket of local storage; tiers.ts).
// Every removal and move writes an audit entry.
import { inArray, sql } from 'drizzle-orm';
import { audit, AUDIT } from '../db/audit.js';
import type { Db } from '../db/client.js';
import { removeFile } from '../db/files.js';
import { blobs, previews, uploads } from '../db/schema.js';
import { purgeDeliveredEvents } from '../db/webhooks.js';
import type { Logger } from '../logger.js';
import { removeUnreferenced } from '../storage/remove-unreferenced.js';
import type { ObjectStorage } from '../storage/types.js';
import { applyTierMove, planTierMoves, policyFor, type TierMove, type TierPolicy } from './tiers.js';

export interface LifecycleSettings {
  rejectedRetentionMs: number;
  quarantineRetentionMs: number;
  orphanGraceMs: number;
  webhookRetentionMs: number;
  /** Storage tiers; absent or without durations: no moves. */
  tiers?: TierPolicy;
}

export interface CategoryReport {
  count: number;
  bytes: number;
  ids: string[];
}

export interface CleanupReport {
  dryRun: boolean;
  startedAt: string;
  expired: CategoryReport;
  rejected: CategoryReport;
  quarantined: CategoryReport;
  blobs: CategoryReport;
  orphans: CategoryReport;
  webhookEvents: CategoryReport;
  /** Blobs moved to a colder tier (ids: their sha256), and each move. */
  tierMoves: CategoryReport & { moves: Array<Omit<TierMove, 'storageKey'>> };
}

/** A category of the report; `onPhase` hears of each when it is done (the CLI prints progress). */
export type CleanupCategory = keyof Omit<CleanupReport, 'dryRun' | 'startedAt'>;
export type CleanupPhaseListener = (category: CleanupCategory, done: CategoryReport) => void;

const BATCH = 1000;
/** Webhook events purged per sweep at most (about three per upload). */
const WEBHOOK_EVENT_BATCH = 50_000;
const empty = (): CategoryReport => ({ count: 0, bytes: 0, ids: [] });

interface Candidate {
  id: string;
  bytes: number;
}

async function candidates(db: Db, query: ReturnType<typeof sql>): Promise<Candidate[]> {
  const rows = await db.execute<{ id: string; bytes: number | string | null }>(query);
  return rows.map((row) => ({ id: row.id, bytes: Number(row.bytes ?? 0) }));
}

export async function runCleanup(
  deps: { db: Db; storage: ObjectStorage; logger: Logger },
  settings: LifecycleSettings,
  options: { dryRun: boolean; now?: Date; onPhase?: CleanupPhaseListener },
): Promise<CleanupReport> {
  const now = options.now ?? new Date();
  const { db, storage, logger } = deps;
  const report: CleanupReport = {
    dryRun: options.dryRun,
    startedAt: now.toISOString(),
    expired: empty(),
    rejected: empty(),
    quarantined: empty(),
    blobs: empty(),
    orphans: empty(),
    webhookEvents: empty(),
    tierMoves: { ...empty(), moves: [] },
  };
  const record = (category: CategoryReport, candidate: Candidate) => {
    category.count++;
    category.bytes += candidate.bytes;
    category.ids.push(candidate.id);
  };
  const removeObjects = (keys: string[]) => removeUnreferenced(storage, keys, logger);
  const phaseDone = (category: CleanupCategory) => options.onPhase?.(category, report[category]);

  const before = (ms: number) => new Date(now.getTime() - ms).toISOString();
  const plans: Array<{
    name: CleanupCategory;
    category: CategoryReport;
    query: ReturnType<typeof sql>;
    status: 'expired' | 'deleted';
    onlyIf: 'uploading' | 'rejected' | 'infected';
    action: (typeof AUDIT)[keyof typeof AUDIT];
  }> = [
    {
      name: 'expired',
      category: report.expired,
      query: sql`select id, size as bytes from uploads
                 where status = 'uploading' and expires_at < ${now.toISOString()}::timestamptz
                 order by expires_at limit ${BATCH}`,
      status: 'expired',
      onlyIf: 'uploading',
      action: AUDIT.expired,
    },
    {
      name: 'rejected',
      category: report.rejected,
      query: sql`select id, size as bytes from uploads
                 where status = 'rejected' and finalized_at < ${before(settings.rejectedRetentionMs)}::timestamptz
                 order by finalized_at limit ${BATCH}`,
      status: 'deleted',
      onlyIf: 'rejected',
      action: AUDIT.purged,
    },
    {
      name: 'quarantined',
      category: report.quarantined,
      query: sql`select id, size as bytes from uploads
                 where status = 'infected' and finalized_at < ${before(settings.quarantineRetentionMs)}::timestamptz
                 order by finalized_at limit ${BATCH}`,
      status: 'deleted',
      onlyIf: 'infected',
      action: AUDIT.purged,
    },
  ];

  for (const plan of plans) {
    for (const candidate of await candidates(db, plan.query)) {
      if (options.dryRun) {
        record(plan.category, candidate);
        continue;
      }
      const removed = await removeFile(db, candidate.id, {
        actor: 'lifecycle',
        action: plan.action,
        status: plan.status,
        onlyIf: [plan.onlyIf],
        ...(plan.onlyIf === 'uploading' ? { expiredBefore: now } : {}),
      });
      if (!removed) continue; // changed meanwhile (e.g. the upload made progress)
      record(plan.category, candidate);
      await removeObjects(removed.objectsToRemove);
    }
    phaseDone(plan.name);
  }

  // Blobs without references (normally removed with their last reference; this catches leftovers).
  const unreferenced = await db.execute<{ sha256: string; size: number; storage_key: string }>(sql`
    select sha256, size, storage_key from blobs b
    where ref_count = 0 and not exists (select 1 from uploads u where u.blob_sha256 = b.sha256)
    limit ${BATCH}`);
  for (const blob of unreferenced) {
    if (!options.dryRun) {
      const deleted = await db.execute(sql`delete from blobs where sha256 = ${blob.sha256} and ref_count = 0 returning sha256`);
      if (deleted.length === 0) continue;
      await removeObjects([blob.storage_key]);
    }
    record(report.blobs, { id: blob.sha256, bytes: Number(blob.size) });
  }
  phaseDone('blobs');

  // Stored objects that no record knows about (a crash between a record change and the removal
  // of its bytes). Young objects are left alone: an upload being created right now is one.
  const graceLimit = now.getTime() - settings.orphanGraceMs;
  let page: { key: string; size: number }[] = [];
  const flush = async () => {
    if (page.length === 0) return;
    const keys = page.map((o) => o.key);
    const known = await db
      .select({ key: uploads.storageKey })
      .from(uploads)
      .where(inArray(uploads.storageKey, keys))
      .union(db.select({ key: blobs.storageKey }).from(blobs).where(inArray(blobs.storageKey, keys)))
      // A blob's previews go with its row (cascade); their objects are then orphans like any other.
      .union(db.select({ key: previews.storageKey }).from(previews).where(inArray(previews.storageKey, keys)));
    const knownKeys = new Set(known.map((row) => row.key));
    for (const object of page) {
      if (knownKeys.has(object.key)) continue;
      if (!options.dryRun) {
        await removeObjects([object.key]);
        await audit(db, { action: AUDIT.orphanRemoved, actor: 'lifecycle', details: { key: object.key, size: object.size } });
      }
      record(report.orphans, { id: object.key, bytes: object.size });
    }
    page = [];
  };
  for await (const object of storage.list()) {
    if (object.modifiedAt.getTime() > graceLimit) continue;
    page.push(object);
    if (page.length >= BATCH) await flush();
  }
  await flush();
  phaseDone('orphans');

  // Counted, not listed: a busy server has many events a sweep.
  report.webhookEvents.count = await purgeDeliveredEvents(db, new Date(now.getTime() - settings.webhookRetentionMs), {
    dryRun: options.dryRun,
    limit: WEBHOOK_EVENT_BATCH,
  });
  phaseDone('webhookEvents');

  if (storage.classes && settings.tiers) {
    const tiers = policyFor(storage.classes, settings.tiers);
    for (const move of await planTierMoves(db, tiers, now)) {
      if (!options.dryRun) {
        const moved = await applyTierMove({ db, classes: storage.classes }, move, tiers).catch((error: unknown) => {
          logger.warn({ err: error, sha256: move.sha256 }, 'could not move blob to its storage tier; next sweep retries');
          return false;
        });
        if (!moved) continue;
      }
      record(report.tierMoves, { id: move.sha256, bytes: move.bytes });
      report.tierMoves.moves.push({ sha256: move.sha256, bytes: move.bytes, from: move.from, to: move.to });
    }
  }
  phaseDone('tierMoves');

  return report;
}
