// process_upload: the first step after the last byte arrives.
//   1. one streaming pass over the stored bytes: SHA-256, MD5, size, the first 64 KiB;
//   2. the bytes must be what the upload declared (magic bytes vs declared kind), else rejected;
//   3. content de-duplication: take a reference on the blob of these bytes (creating it, and
//      enqueueing its scan and metadata steps, if the bytes are new); a duplicate's own copy is
//      deleted;
//   4. if the blob's steps are already done (a duplicate of processed bytes), finalize now.
// Every step is guarded in the database, so running this job twice changes nothing.
import type { Task } from 'graphile-worker';
import { z } from 'zod';
import { timed } from '../src/metrics.js';
import { findUpload } from '../src/db/uploads.js';
import { failUploads, finalizeBlob, linkBlob, rejectUpload } from '../src/db/processing.js';
import { ObjectNotFoundError } from '../src/storage/types.js';
import { declaredKindMatches, sniff, type Kind } from './parsers/sniff.js';
import { digestStream } from './steps/digest.js';
import { metadataFromHead } from './steps/metadata.js';
import { errorMessage, isLastAttempt, stepOptions, type TaskDeps, observeFinal } from './deps.js';

const Payload = z.object({ uploadId: z.string().regex(/^[0-9a-f]{32}$/) });

function mismatchReason(kind: Kind, format: string | null, size: number): string {
  if (size === 0) return `the file is empty, so it cannot be a valid ${kind} file`;
  if (!format) return `the content is not a recognised ${kind} format`;
  return `the content is ${format.toUpperCase()} data, not a ${kind} file`;
}

export function processUpload(deps: TaskDeps): Task {
  return async (rawPayload, helpers) => {
    const { uploadId } = Payload.parse(rawPayload);
    const log = deps.logger.child({ task: 'process_upload', uploadId, attempt: helpers.job.attempts });
    const options = stepOptions(deps);
    try {
      const upload = await findUpload(deps.db, uploadId);
      if (!upload || upload.status !== 'processing') return;

      if (upload.blobSha256 === null) {
        const key = upload.storageKey;
        if (key === null) throw new Error(`upload ${uploadId} has neither a blob nor stored bytes`);
        await deps.storage.completeUpload(key);
        const started = performance.now();
        const digest = await timed('digest', async () => digestStream(await deps.storage.read(key)));
        log.info({ size: digest.size, ms: Math.round(performance.now() - started) }, 'digested');
        if (upload.size !== null && digest.size !== upload.size) {
          // tus reported the upload complete, so this is storage losing or adding bytes.
          throw new Error(`stored size ${digest.size} differs from the upload length ${upload.size}`);
        }

        const sniffed = sniff(digest.head);
        const kind = upload.kind as Kind;
        if (!declaredKindMatches(kind, sniffed)) {
          const content = { sha256: digest.sha256, md5: digest.md5, detectedMimeType: sniffed?.mime ?? null };
          observeFinal(await rejectUpload(deps.db, uploadId, mismatchReason(kind, sniffed?.format ?? null, digest.size), content));
          log.info({ declared: kind, sniffed: sniffed?.format ?? null }, 'rejected: content does not match the declared type');
          return;
        }

        const link = await linkBlob(
          deps.db,
          uploadId,
          {
            sha256: digest.sha256,
            md5: digest.md5,
            size: digest.size,
            kind,
            format: sniffed?.format ?? null,
            mimeType: sniffed?.mime ?? upload.mimeType,
            metadata: metadataFromHead(kind, digest.head, digest.size),
          },
          options,
        );
        if (link.deduplicated) {
          // Same bytes are stored already: this copy goes (the lifecycle orphan sweep would
          // remove it anyway if this process died right here).
          await deps.storage.remove(key);
          log.info({ sha256: digest.sha256 }, 'de-duplicated');
        }
        if (!link.linked) return;
        observeFinal(await finalizeBlob(deps.db, digest.sha256, options));
        return;
      }
      observeFinal(await finalizeBlob(deps.db, upload.blobSha256, options));
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
