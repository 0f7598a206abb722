// extract_metadata: metadata of one blob (content), computed once and reused by every upload of
// the same bytes. Invalid content (a lying FSEQ header, XML that is not an xLights sequence, audio
// that cannot be parsed) rejects the files; any other failure is retried with backoff and, after
// the last attempt, recorded in metadataError while the file stays usable.
import type { Task } from 'graphile-worker';
import { parsePayload } from '../src/db/jobs.js';
import { timed } from '../src/metrics.js';
import { findBlob, finalizeBlob, saveMetadata } from '../src/db/processing.js';
import { enqueuePreviewsIfClean } from '../src/db/previews.js';
import { isParseError } from './parsers/errors.js';
import { extractMetadata as extract } from './steps/metadata.js';
import { errorMessage, isLastAttempt, stepOptions, type TaskDeps, observeFinal } from './deps.js';

export function extractMetadata(deps: TaskDeps): Task<'extract_metadata'> {
  return async (rawPayload, helpers) => {
    const { sha256 } = parsePayload('extract_metadata', rawPayload);
    const log = deps.logger.child({ task: helpers.job.task_identifier, sha256, attempt: helpers.job.attempts });
    const blob = await findBlob(deps.db, sha256);
    if (!blob) return;
    if (!blob.metadataDone) {
      const started = performance.now();
      try {
        const metadata = await timed('metadata', () => extract(deps.storage, blob, { xsqMaxBytes: 100 * 2 ** 20 }));
        await saveMetadata(deps.db, sha256, { metadata, validationError: null, metadataError: null });
        log.info({ kind: blob.kind, ms: Math.round(performance.now() - started) }, 'metadata extracted');
      } catch (error) {
        if (isParseError(error)) {
          await saveMetadata(deps.db, sha256, { metadata: null, validationError: error.message, metadataError: null });
          log.info({ code: error.code, reason: error.message }, 'content is invalid for its kind');
        } else if (isLastAttempt(helpers.job)) {
          await saveMetadata(deps.db, sha256, { metadata: null, validationError: null, metadataError: errorMessage(error) });
          log.error({ err: error }, 'metadata extraction gave up; the file stays usable');
        } else {
          throw error;
        }
      }
    }
    observeFinal(await finalizeBlob(deps.db, sha256, stepOptions(deps)));
    await enqueuePreviewsIfClean(deps.db, sha256, deps.config.jobMaxAttempts);
  };
}
