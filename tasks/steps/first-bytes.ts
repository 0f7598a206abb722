// A large upload's first 64 KiB, summarised as they arrive (src/storage/digesting-store.ts keeps
// them only until the upload outgrows the small files): the type sniff and, for FSEQ content, its
// header. Processing then decides the type and the FSEQ metadata without reading a byte back; the
// header's size check needs the stored size, so it runs there (metadataFromSummary).
import type { FirstBytes } from '../../src/db/jobs.js';
import { isParseError } from '../parsers/errors.js';
import { checkFseqSize, parseFseqHeader, type FseqHeader } from '../parsers/fseq.js';
import { sniff } from '../parsers/sniff.js';
import type { HeadOutcome } from './metadata.js';

export function summarizeFirstBytes(head: Buffer): FirstBytes {
  const sniffed = sniff(head);
  // ESEQ's header depends on the file size, unknown while the bytes arrive: processing reads it.
  if (sniffed?.format !== 'fseq') return { sniffed, fseq: null, fseqError: null };
  try {
    return { sniffed, fseq: { ...parseFseqHeader(head) }, fseqError: null };
  } catch (error) {
    if (isParseError(error)) return { sniffed, fseq: null, fseqError: error.message };
    throw error;
  }
}

/**
 * The metadata metadataFromHead gives for these first bytes, from their summary and the stored
 * size; null when the summary does not settle it (a job extracts it).
 */
export function metadataFromSummary(kind: string, first: FirstBytes, size: number): HeadOutcome | null {
  switch (kind) {
    case 'audio':
    case 'xsq':
    case 'image':
      return null;
    case 'fseq': {
      if (first.fseqError !== null) return { metadata: null, validationError: first.fseqError, metadataError: null };
      if (first.fseq === null) return null;
      const sizeError = checkFseqSize(first.fseq as unknown as FseqHeader, size);
      if (sizeError) return { metadata: null, validationError: sizeError.message, metadataError: null };
      return { metadata: first.fseq, validationError: null, metadataError: null };
    }
    default:
      return { metadata: null, validationError: null, metadataError: null };
  }
}
