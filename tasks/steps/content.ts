// What a finished upload's bytes make of it, once their digests and first bytes are known: the type
// check by magic bytes (rejected when they are not the declared kind), then the link to the blob
// of those bytes (de-duplication, metadata, and the final status when nothing is left to wait
// for). The one rule for the processing job and for a small file finished inline.
import type { Kind } from '../../src/config/index.js';
import { finalizeBlob, linkBlob, rejectUpload, type ContentFacts, type FinalizedUpload, type LinkResult, type StepOptions } from '../../src/db/processing.js';
import type { Executor } from '../../src/db/tx.js';
import { declaredKindMatches, sniff } from '../parsers/sniff.js';
import type { Digest, SummarizedDigest } from './digest.js';
import { metadataFromSummary } from './first-bytes.js';
import { metadataFromFirstBytes } from './metadata.js';

export interface UploadContent {
  kind: Kind;
  mimeType: string | null;
}

export type Settled =
  /** The record had moved on (linked, finalized, deleted): nothing was applied. */
  | { applied: false }
  | { applied: true; rejected: { declared: Kind; sniffed: string | null }; final: FinalizedUpload[] }
  | {
      applied: true;
      rejected: null;
      /** The bytes are stored already: the upload's own copy is the caller's to remove. */
      deduplicated: boolean;
      /** Uploads that got their final status here (none while a blob step is pending). */
      final: FinalizedUpload[];
    };

export function mismatchReason(kind: Kind, format: string | null, size: number): string {
  if (size === 0) return `the file is empty, so it cannot be a valid ${kind} file`;
  if (!format) return `the content is not a recognised ${kind} format`;
  return `the content is ${format.toUpperCase()} data, not a ${kind} file`;
}

/** What the bytes are, before anything is written: rejected (not the declared kind) or the facts to link. */
export type ContentCheck =
  | { rejected: { declared: Kind; sniffed: string | null; reason: string; detectedMimeType: string | null }; facts: null }
  | { rejected: null; facts: ContentFacts };

/** The digests with what the first bytes said: the bytes themselves, or their summary made on arrival. */
export type KnownContent = Digest | SummarizedDigest;

export async function checkContent(upload: UploadContent, digest: KnownContent): Promise<ContentCheck> {
  const sniffed = 'first' in digest ? digest.first.sniffed : sniff(digest.head);
  if (!declaredKindMatches(upload.kind, sniffed)) {
    const reason = mismatchReason(upload.kind, sniffed?.format ?? null, digest.size);
    return { rejected: { declared: upload.kind, sniffed: sniffed?.format ?? null, reason, detectedMimeType: sniffed?.mime ?? null }, facts: null };
  }
  const mimeType = sniffed?.mime ?? upload.mimeType;
  return {
    rejected: null,
    facts: {
      sha256: digest.sha256,
      md5: digest.md5,
      size: digest.size,
      kind: upload.kind,
      format: sniffed?.format ?? null,
      mimeType,
      metadata:
        'first' in digest
          ? metadataFromSummary(upload.kind, digest.first, digest.size)
          : await metadataFromFirstBytes({ kind: upload.kind, size: digest.size, mimeType }, digest.head),
    },
  };
}

export async function settleContent(
  db: Executor,
  uploadId: string,
  upload: UploadContent,
  digest: KnownContent,
  options: StepOptions,
): Promise<Settled> {
  const check = await checkContent(upload, digest);
  if (check.rejected) {
    const { declared, sniffed, reason, detectedMimeType } = check.rejected;
    const rejected = await rejectUpload(db, uploadId, reason, { sha256: digest.sha256, md5: digest.md5, detectedMimeType });
    if (!rejected) return { applied: false };
    return { applied: true, rejected: { declared, sniffed }, final: [rejected] };
  }
  return settleLinked(db, check.facts.sha256, await linkBlob(db, uploadId, check.facts, options), options);
}

/** After a link: the final status the link gave, or the blob's own when it has nothing pending. */
export async function settleLinked(db: Executor, sha256: string, link: LinkResult, options: StepOptions): Promise<Settled> {
  if (!link.linked) return { applied: false };
  // Not ready and no step pending: the blob's outcome is another status (rejected, infected).
  const final = link.ready ? [link.ready] : link.stepsPending ? [] : await finalizeBlob(db, sha256, options);
  return { applied: true, rejected: null, deduplicated: link.deduplicated, final };
}
