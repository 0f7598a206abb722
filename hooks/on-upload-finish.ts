// onUploadFinish: every byte has arrived. A small file this process received whole is processed in
// the transaction that finishes it (tasks/steps/finish-inline.ts); otherwise mark the record
// `processing` and enqueue its processing job in one transaction. If this fails (database down,
// process killed), the bytes are safe in storage and the reconciler (or the client's next HEAD)
// finishes the upload later.
import type { Upload } from '@tus/utils';
import { enqueueFinalsOf } from '../src/db/concat.js';
import { requestContextOf } from '../src/tus/request-context.js';
import { tusUploadsFinished } from '../src/metrics.js';
import type { HookDeps } from './deps.js';

export async function finishUpload(deps: HookDeps, id: string, size: number, partial = false): Promise<boolean> {
  // Taken whatever happens next: a finish that fails or loses the race leaves processing to hash.
  const digest = await deps.takeArrivalDigest(id, size);
  // A finished partial upload (tus concatenation) is not a file: it may complete a final upload
  // (whose bytes are assembled, and hashed, by processing).
  if (partial) {
    await enqueueFinalsOf(deps.db, id, deps.config.jobMaxAttempts);
    return false;
  }
  if (digest && (await deps.finishInline?.(id, size, digest))) {
    tusUploadsFinished.inc();
    deps.logger.info({ uploadId: id, size }, 'upload finished; processed inline');
    return true;
  }
  const started = await deps.records.finish(id, size, digest);
  if (started) {
    tusUploadsFinished.inc();
    deps.logger.info({ uploadId: id, size }, 'upload finished; processing enqueued');
  }
  return started;
}

export function onUploadFinish(deps: HookDeps) {
  return async (req: Request, upload: Upload): Promise<Record<string, never>> => {
    const partial = requestContextOf(req).partial === true;
    await finishUpload(deps, upload.id, upload.size ?? upload.offset, partial);
    return {};
  };
}
