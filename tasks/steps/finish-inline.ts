// Small files whose every byte this process received are processed where they finish: marked
// `processing`, type-checked, linked to their blobs and, with nothing left to wait for, made ready
// — one transaction, the same rules as the job (steps/content.ts), no job and no read back. The
// store's write has returned, so the bytes are durable before anything is ready. Whatever is not
// settled by the first bytes (a scan, metadata needing more than the head) is enqueued by the link
// as for the job; anything not eligible, or a failure, rolls back to `uploading` and the caller
// takes the job path (or the reconciler does, after a crash).
//
// Finishes that arrive while one transaction is in the database go together in the next one (one
// statement marks them all `processing`, one links them all: src/db/link-many.ts), so many small
// files at once share round trips, a commit and the owner's quota row instead of queueing on it.
import type { Db } from '../../src/db/client.js';
import { coalesce } from '../../src/db/coalesce.js';
import { linkBlobs, type LinkRequest } from '../../src/db/link-many.js';
import type { StepOptions } from '../../src/db/processing.js';
import type { Tx } from '../../src/db/tx.js';
import { isDatabaseUnavailable } from '../../src/db/unavailable.js';
import { startProcessingInline } from '../../src/db/uploads.js';
import type { Logger } from '../../src/logger.js';
import { timed, uploadDigests } from '../../src/metrics.js';
import type { ArrivalDigest } from '../../src/storage/digesting-store.js';
import { removeUnreferenced } from '../../src/storage/remove-unreferenced.js';
import type { ObjectStorage } from '../../src/storage/types.js';
import { observeFinal } from '../deps.js';
import { checkContent, settleContent, settleLinked, type Settled } from './content.js';
import type { Digest } from './digest.js';

/** Files up to this size are processed inline (XSQ and audio metadata only when the head is all of them). */
export const INLINE_MAX_BYTES = 2 ** 20;

export interface InlineFinishDeps {
  db: Db;
  storage: ObjectStorage;
  logger: Logger;
  options: StepOptions;
  /** The most finishes in one transaction. */
  maxBatch?: number;
}

/** True when the upload was finished here; false: not eligible, or lost, and the job path applies. */
export type FinishInline = (uploadId: string, size: number, digest: ArrivalDigest) => Promise<boolean>;

interface Finish {
  uploadId: string;
  digest: Digest;
}

/** What one finish came to in its batch's transaction: not started here, or settled. */
type Outcome = null | { settled: Settled & { applied: true }; storageKey: string };

class NotEligible extends Error {}

export function inlineFinisher(deps: InlineFinishDeps): FinishInline {
  // One transaction in the database at a time; the finishes arriving meanwhile form the next.
  const finish = coalesce((items: Finish[]) => timed('inline', () => deps.db.transaction((tx) => finishTogether(tx, items, deps))), {
    maxBatch: deps.maxBatch ?? 64,
    maxInFlight: 1,
    retryAlone: (error) => !isDatabaseUnavailable(error),
  });
  return async (uploadId, size, digest) => {
    const head = digest.head;
    if (head === null || size > INLINE_MAX_BYTES) return false;
    let outcome: Outcome;
    try {
      outcome = await finish({ uploadId, digest: { sha256: digest.sha256, md5: digest.md5, size, head } });
    } catch (error) {
      if (!(error instanceof NotEligible)) deps.logger.warn({ err: error, uploadId }, 'inline finish failed; processing enqueued instead');
      return false;
    }
    if (!outcome) return false;
    const { settled, storageKey } = outcome;
    uploadDigests.inc({ source: 'arrival' });
    observeFinal(settled.final);
    if (!settled.rejected && settled.deduplicated) {
      await removeUnreferenced(deps.storage, [storageKey], deps.logger.child({ uploadId }));
    }
    return true;
  };
}

/**
 * One transaction for finishes arriving together. A failure of any (a store that cannot complete,
 * an upload that cannot be processed from its record) throws, and the batch is retried one at a
 * time: that one then rolls back alone and takes the job path.
 */
async function finishTogether(tx: Tx, items: Finish[], deps: InlineFinishDeps): Promise<Outcome[]> {
  const started = await startProcessingInline(
    tx,
    items.map(({ uploadId, digest }) => ({ id: uploadId, size: digest.size })),
  );
  for (const upload of started.values()) if (upload === null) throw new NotEligible();
  const uploads = items.map(({ uploadId }) => started.get(uploadId) ?? null);
  await Promise.all(uploads.map((upload) => upload && deps.storage.completeUpload(upload.storageKey)));

  // Linked together: the common case (no scanner, the head says it all, one upload per blob).
  // The others one at a time, in this transaction, by the job's own rule.
  const settled = new Map<number, Settled>();
  const together: (LinkRequest & { at: number })[] = [];
  if (!deps.options.scanner) {
    const blobs = new Set<string>();
    for (const [at, item] of items.entries()) {
      const upload = uploads[at];
      if (!upload) continue;
      const check = await checkContent(upload, item.digest);
      const metadata = check.facts?.metadata;
      if (!check.facts || !metadata || metadata.validationError !== null || blobs.has(check.facts.sha256)) continue;
      blobs.add(check.facts.sha256);
      together.push({ uploadId: item.uploadId, facts: check.facts, at });
    }
  }
  if (together.length > 0) {
    const links = await linkBlobs(tx, together, deps.options);
    for (const [i, link] of links.entries()) {
      const request = together[i]!;
      if (link) settled.set(request.at, await settleLinked(tx, request.facts.sha256, link, deps.options));
    }
  }
  const outcomes: Outcome[] = [];
  for (const [at, item] of items.entries()) {
    const upload = uploads[at];
    if (!upload) {
      outcomes.push(null);
      continue;
    }
    const result = settled.get(at) ?? (await settleContent(tx, item.uploadId, upload, item.digest, deps.options));
    // Made `processing` in this transaction, so nothing else can have moved it on.
    if (!result.applied) throw new NotEligible();
    outcomes.push({ settled: result, storageKey: upload.storageKey });
  }
  return outcomes;
}
