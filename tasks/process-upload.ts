// process_upload: the first step after the last byte arrives.
//   1. one streaming pass over the stored bytes: SHA-256, MD5, size, the first 64 KiB — or, when
//      the job carries the digests computed as the bytes arrived, only the first 64 KiB, or
//      nothing when it also carries what those said (steps/first-bytes.ts): only the stored size;
//   2. the bytes must be what the upload declared (magic bytes vs declared kind), else rejected;
//   3. content de-duplication: take a reference on the blob of these bytes (creating it, and
//      enqueueing its scan and metadata steps, if the bytes are new); a duplicate's own copy is
//      deleted; with nothing left to wait for, the upload becomes ready in the same statement;
//   4. if the blob's outcome is known and not `ready` (a duplicate of rejected or infected
//      bytes), finalize now.
// Steps 2-4 are steps/content.ts, which a small file finished inline (steps/finish-inline.ts) shares.
// Every step is guarded in the database, so running this job twice changes nothing.
import type { Task } from 'graphile-worker';
import { parsePayload, StoredUpload, type ContentDigest, type FirstBytes } from '../src/db/jobs.js';
import { timed, uploadDigests } from '../src/metrics.js';
import { findUpload } from '../src/db/uploads.js';
import { failUploads, finalizeBlob } from '../src/db/processing.js';
import type { Logger } from '../src/logger.js';
import { removeUnreferenced } from '../src/storage/remove-unreferenced.js';
import { ObjectNotFoundError } from '../src/storage/types.js';
import type { Kind } from './parsers/sniff.js';
import { settleContent } from './steps/content.js';
import { digestFromArrival, digestStream, digestWithKnownHashes } from './steps/digest.js';
import { errorMessage, isLastAttempt, stepOptions, type TaskDeps, observeFinal } from './deps.js';

/** What the job carries from the bytes' arrival: their digests and, for a large upload, what its first bytes said. */
interface Arrival {
  digest: ContentDigest | null;
  first: FirstBytes | null;
}

export function processUpload(deps: TaskDeps): Task<'process_upload'> {
  const options = stepOptions(deps);

  /**
   * Digest, type check and link of the upload's stored bytes. False when the record had already
   * moved on (linked, finalized, deleted): nothing was applied, the caller looks at the record.
   */
  async function processBytes(uploadId: string, upload: StoredUpload, arrival: Arrival, log: Logger): Promise<boolean> {
    const key = upload.storageKey;
    await deps.storage.completeUpload(key);
    const started = performance.now();
    const arrivalDigest = arrival.digest;
    const fromArrival = arrivalDigest !== null && upload.size !== null;
    const digest = await timed('digest', async () =>
      fromArrival
        ? arrival.first
          ? digestFromArrival(deps.storage, key, arrivalDigest, arrival.first)
          : digestWithKnownHashes(deps.storage, key, upload.size!, arrivalDigest)
        : digestStream(await deps.storage.read(key, undefined, upload.size)),
    );
    uploadDigests.inc({ source: fromArrival ? 'arrival' : 'storage' });
    log.info({ size: digest.size, ms: Math.round(performance.now() - started), hashedOnArrival: fromArrival }, 'digested');
    if (upload.size !== null && digest.size !== upload.size) {
      // tus reported the upload complete, so this is storage losing or adding bytes.
      throw new Error(`stored size ${digest.size} differs from the upload length ${upload.size}`);
    }

    const settled = await settleContent(deps.db, uploadId, upload, digest, options);
    if (!settled.applied) return false;
    if (settled.rejected) {
      log.info(settled.rejected, 'rejected: content does not match the declared type');
    } else if (settled.deduplicated) {
      // Same bytes are stored already: this copy goes.
      await removeUnreferenced(deps.storage, [key], log);
      log.info({ sha256: digest.sha256 }, 'de-duplicated');
    }
    observeFinal(settled.final);
    return true;
  }

  return async (rawPayload, helpers) => {
    const payload = parsePayload('process_upload', rawPayload);
    const { uploadId } = payload;
    // The bytes of a `processing` upload never change: the digests stay right for every attempt.
    const arrival: Arrival = { digest: payload.digest ?? null, first: payload.first ?? null };
    const log = deps.logger.child({ task: helpers.job.task_identifier, uploadId, attempt: helpers.job.attempts });
    try {
      // First attempt: straight from the job's facts (the record stays the truth: every transition
      // below is guarded by its state). A retry may follow a link that committed, so it reads the
      // record first (its bytes may now be the blob's, or gone as a duplicate).
      const facts = helpers.job.attempts === 1 ? StoredUpload.safeParse(payload.upload) : null;
      if (facts?.success) {
        const applied = await processBytes(uploadId, facts.data, arrival, log).catch((error: unknown) => {
          // Missing bytes may mean the record moved on (deleted): the record decides below.
          if (error instanceof ObjectNotFoundError) return false;
          throw error;
        });
        if (applied) return;
      }

      const upload = await findUpload(deps.db, uploadId);
      if (!upload || upload.status !== 'processing') return;
      if (upload.blobSha256 !== null) {
        // Linked by an earlier attempt that stopped before finalizing.
        observeFinal(await finalizeBlob(deps.db, upload.blobSha256, options));
        return;
      }
      if (upload.storageKey === null) throw new Error(`upload ${uploadId} has neither a blob nor stored bytes`);
      await processBytes(uploadId, { storageKey: upload.storageKey, size: upload.size, kind: upload.kind as Kind, mimeType: upload.mimeType }, arrival, log);
    } catch (error) {
      if (error instanceof ObjectNotFoundError || isLastAttempt(helpers.job)) {
        const reason =
          error instanceof ObjectNotFoundError
            ? 'the stored bytes of this upload are missing'
            : `processing failed after ${helpers.job.attempts} attempts: ${errorMessage(error)}`;
        observeFinal(await failUploads(deps.db, { uploadId }, reason));
        log.error({ err: error }, 'processing gave up');
        return;
      }
      throw error;
    }
  };
}
