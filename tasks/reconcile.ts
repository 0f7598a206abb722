// reconcile: catches whatever slipped through the normal path, so nothing acknowledged is lost.
//   - jobs locked by a worker process that died are handed back to the queue at once
//     (graphile-worker alone would wait four hours);
//   - an upload whose bytes all arrived but whose finish hook never ran (process killed, database
//     down at that instant) is finished: marked `processing` with its job;
//   - an upload in `processing` with no job left to move it on gets its job again.
// Runs at worker start and every minute; every action is idempotent.
import type { Task } from 'graphile-worker';
import { sql } from 'drizzle-orm';
import { enqueueJob, parsePayload } from '../src/db/jobs.js';
import { finalizeBlob, saveScan } from '../src/db/processing.js';
import { processingWithoutJobs, staleUploading } from '../src/db/reconcile.js';
import { markUploadFinished } from '../src/db/uploads.js';
import { unlockDeadWorkers } from '../src/db/workers.js';
import { staleFinals } from '../src/db/concat.js';
import { stepOptions, type TaskDeps, observeFinal } from './deps.js';

const BATCH = 200;

export interface ReconcileReport {
  unlockedWorkers: string[];
  finished: string[];
  requeued: string[];
}

/** A pass of the reconciler, done, with what it repaired (the CLI prints progress). */
export type ReconcilePhase = 'unlockedWorkers' | 'finished' | 'concatenations' | 'processing';

export async function reconcile(deps: TaskDeps, hooks: { onPhase?: (phase: ReconcilePhase, repaired: number) => void } = {}): Promise<ReconcileReport> {
  const report: ReconcileReport = { unlockedWorkers: [], finished: [], requeued: [] };
  const options = stepOptions(deps);
  report.unlockedWorkers = await unlockDeadWorkers(deps.sql);
  hooks.onPhase?.('unlockedWorkers', report.unlockedWorkers.length);

  for (const upload of await staleUploading(deps.db, deps.config.reconcileAfterMs, BATCH)) {
    try {
      const stored = await deps.storage.tusStore.getUpload(upload.id);
      if (stored.size !== undefined && stored.offset === stored.size) {
        if (await markUploadFinished(deps.db, upload.id, { size: stored.size, maxAttempts: options.maxAttempts })) {
          report.finished.push(upload.id);
        }
      }
    } catch {
      // No stored upload (never created, or already removed): expiry deals with it.
    }
  }
  hooks.onPhase?.('finished', report.finished.length);

  // Final uploads (tus concatenation) whose assembly job is gone.
  for (const id of await staleFinals(deps.db, deps.config.reconcileAfterMs, BATCH)) {
    await enqueueJob(deps.db, 'concat_upload', { uploadId: id }, { maxAttempts: options.maxAttempts });
    report.requeued.push(id);
  }
  const finals = report.requeued.length;
  hooks.onPhase?.('concatenations', finals);

  for (const upload of await processingWithoutJobs(deps.db, deps.config.reconcileAfterMs, BATCH)) {
    const sha256 = upload.blob_sha256;
    await deps.db.transaction(async (tx) => {
      if (sha256 === null) {
        await enqueueJob(tx, 'process_upload', { uploadId: upload.id }, { maxAttempts: options.maxAttempts });
        return;
      }
      if (!upload.metadata_done) {
        await enqueueJob(tx, 'extract_metadata', { sha256 }, { maxAttempts: options.maxAttempts });
      }
      if (upload.scan_status === 'pending') {
        if (options.scanner) {
          await enqueueJob(tx, 'scan_blob', { sha256 }, { maxAttempts: options.maxAttempts });
        } else {
          // The scanner was configured when these bytes arrived and is not any more.
          await saveScan(tx, sha256, { status: 'skipped', signature: null });
        }
      }
      await tx.execute(sql`update uploads set updated_at = now() where id = ${upload.id}`);
    });
    if (sha256 !== null) observeFinal(await finalizeBlob(deps.db, sha256, options));
    report.requeued.push(upload.id);
  }
  hooks.onPhase?.('processing', report.requeued.length - finals);
  return report;
}

export function reconcileTask(deps: TaskDeps): Task<'reconcile'> {
  return async (rawPayload) => {
    parsePayload('reconcile', rawPayload);
    const report = await reconcile(deps);
    if (report.unlockedWorkers.length + report.finished.length + report.requeued.length > 0) {
      deps.logger.warn(report, 'reconciler repaired state');
    }
  };
}
