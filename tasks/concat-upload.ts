// concat_upload: assembles a final upload (tus concatenation) from its partial uploads once every
// one of them is complete, then hands it to processing like any finished upload. Enqueued when
// the final is created and again whenever one of its partials finishes; a run that finds a
// partial still incomplete simply ends (the partial's finish enqueues it again).
import type { Task } from 'graphile-worker';
import { parsePayload } from '../src/db/jobs.js';
import { findUploads, retirePartials } from '../src/db/concat.js';
import { failUploads } from '../src/db/processing.js';
import { findUpload, markUploadFinished } from '../src/db/uploads.js';
import { timed } from '../src/metrics.js';
import { errorMessage, isLastAttempt, observeFinal, type TaskDeps } from './deps.js';

/** Partials stay this long after assembly (a client MAY reuse them), then expire. */
const PARTIAL_GRACE_MS = 3_600_000;

export function concatUpload(deps: TaskDeps): Task<'concat_upload'> {
  return async (rawPayload, helpers) => {
    const { uploadId } = parsePayload('concat_upload', rawPayload);
    const log = deps.logger.child({ task: helpers.job.task_identifier, uploadId, attempt: helpers.job.attempts });
    const final = await findUpload(deps.db, uploadId);
    if (!final || final.status !== 'uploading' || !final.concatParts) return;

    const parts = new Map((await findUploads(deps.db, final.concatParts)).map((row) => [row.id, row]));
    const sources: Array<{ key: string; size: number }> = [];
    for (const id of final.concatParts) {
      const part = parts.get(id);
      if (!part || part.status !== 'uploading' || part.storageKey === null) {
        // A partial expired or was terminated before the final could be assembled.
        observeFinal(await failUploads(deps.db, { uploadId }, `partial upload ${id} is gone; the file cannot be assembled`, 'uploading'));
        log.warn({ partial: id }, 'a partial upload is gone');
        return;
      }
      const stored = await deps.storage.tusStore.getUpload(part.storageKey).catch(() => null);
      if (!stored || stored.size === undefined || stored.offset !== stored.size) return; // not complete yet
      sources.push({ key: part.storageKey, size: stored.size });
    }

    try {
      for (const source of sources) await deps.storage.completeUpload(source.key);
      await timed('concatenate', () => deps.storage.concatenate(uploadId, sources));
    } catch (error) {
      if (!isLastAttempt(helpers.job)) throw error;
      const reason = `assembling the file failed after ${helpers.job.attempts} attempts: ${errorMessage(error)}`;
      observeFinal(await failUploads(deps.db, { uploadId }, reason, 'uploading'));
      return;
    }
    const size = sources.reduce((sum, source) => sum + source.size, 0);
    await markUploadFinished(deps.db, uploadId, { size, maxAttempts: deps.config.jobMaxAttempts });
    await retirePartials(deps.db, [...new Set(final.concatParts)], PARTIAL_GRACE_MS);
    log.info({ parts: sources.length, size }, 'final upload assembled');
  };
}
