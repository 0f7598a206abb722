// A small file whose every byte this process received is processed where it finishes: marked
// `processing`, type-checked, linked to its blob and, with nothing left to wait for, made ready —
// one transaction, the same rules as the job (steps/content.ts), no job and no read back. The
// store's write has returned, so the bytes are durable before anything is ready. Whatever is not
// settled by the first bytes (a scan, metadata needing more than the head) is enqueued by the link
// as for the job; anything not eligible, or a failure, rolls back to `uploading` and the caller
// takes the job path (or the reconciler does, after a crash).
import type { Db } from '../../src/db/client.js';
import type { StepOptions } from '../../src/db/processing.js';
import { startProcessingInline } from '../../src/db/uploads.js';
import type { Logger } from '../../src/logger.js';
import { removeUnreferenced } from '../../src/storage/remove-unreferenced.js';
import { timed, uploadDigests } from '../../src/metrics.js';
import type { ArrivalDigest } from '../../src/storage/digesting-store.js';
import type { ObjectStorage } from '../../src/storage/types.js';
import { observeFinal } from '../deps.js';
import { settleContent, type Settled } from './content.js';

/** Files up to this size are processed inline (XSQ and audio metadata only when the head is all of them). */
export const INLINE_MAX_BYTES = 2 ** 20;

export interface InlineFinishDeps {
  db: Db;
  storage: ObjectStorage;
  logger: Logger;
  options: StepOptions;
  /**
   * Inline finishes at once; more take the job path. Each one holds its owner's row until it
   * commits, so many at once queue on it (and creations with them) instead of sharing the
   * batched finish statement.
   */
  maxInFlight?: number;
}

/** True when the upload was finished here; false: not eligible, or lost, and the job path applies. */
export type FinishInline = (uploadId: string, size: number, digest: ArrivalDigest) => Promise<boolean>;

class NotEligible extends Error {}

export function inlineFinisher(deps: InlineFinishDeps): FinishInline {
  const maxInFlight = deps.maxInFlight ?? 4;
  let inFlight = 0;
  return async (uploadId, size, digest) => {
    const head = digest.head;
    if (head === null || size > INLINE_MAX_BYTES || inFlight >= maxInFlight) return false;
    let settled: Settled & { applied: true };
    let storageKey: string;
    inFlight += 1;
    try {
      [settled, storageKey] = await timed('inline', () => deps.db.transaction(async (tx) => {
        const upload = await startProcessingInline(tx, uploadId, size);
        if (!upload) throw new NotEligible();
        await deps.storage.completeUpload(upload.storageKey);
        const result = await settleContent(tx, uploadId, upload, { sha256: digest.sha256, md5: digest.md5, size, head }, deps.options);
        // Just made `processing` in this transaction, so nothing else can have moved it on.
        if (!result.applied) throw new NotEligible();
        return [result, upload.storageKey] as const;
      }));
    } catch (error) {
      if (!(error instanceof NotEligible)) deps.logger.warn({ err: error, uploadId }, 'inline finish failed; processing enqueued instead');
      return false;
    } finally {
      inFlight -= 1;
    }
    uploadDigests.inc({ source: 'arrival' });
    observeFinal(settled.final);
    if (!settled.rejected && settled.deduplicated) {
      await removeUnreferenced(deps.storage, [storageKey], deps.logger.child({ uploadId }));
    }
    return true;
  };
}
