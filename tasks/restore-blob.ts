// restore_blob: waits for the restore of an archived blob (started by a download or by
// POST /api/files/:id/restore). Each run asks the bucket once: done → the restored copy's expiry
// is recorded and downloads work again; still going → asked again in RESTORE_POLL_MS; no restore
// there (lost, or the copy expired before anyone read it) → asked for again.
import type { Task } from 'graphile-worker';
import { enqueueJob, parsePayload } from '../src/db/jobs.js';
import { findBlob } from '../src/db/processing.js';
import { recordRestored } from '../src/db/tiers.js';
import { RESTORE_POLL_MS } from '../src/lifecycle/tiers.js';
import type { TaskDeps } from './deps.js';

export function restoreBlob(deps: TaskDeps): Task<'restore_blob'> {
  return async (rawPayload) => {
    const { sha256 } = parsePayload('restore_blob', rawPayload);
    const classes = deps.storage.classes;
    const blob = await findBlob(deps.db, sha256);
    if (!classes || !blob || blob.storageTier !== 'archive' || blob.restoreRequestedAt === null) return;
    const object = await classes.inspect(blob.storageKey);
    if (!object) {
      deps.logger.warn({ task: 'restore_blob', sha256, key: blob.storageKey }, 'archived object is missing; nothing to restore');
      return;
    }
    if (object.restore && !object.restore.ongoing) {
      await recordRestored(deps.db, sha256, object.restore.expiresAt);
      deps.logger.info({ task: 'restore_blob', sha256, restoredUntil: object.restore.expiresAt }, 'archived blob restored');
      return;
    }
    if (!object.restore) await classes.restore(blob.storageKey, deps.config.tiers.restoreDays);
    await enqueueJob(deps.db, 'restore_blob', { sha256 }, { runAt: new Date(Date.now() + RESTORE_POLL_MS) });
  };
}
