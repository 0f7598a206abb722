// Metadata extraction for one blob, by kind: the storage reads happen here, the parsing in the
// pure parsers. A ParseError means the content is invalid for its kind (→ rejected); anything
// else is an infrastructure problem worth a retry.
import { Readable } from 'node:stream';
import type { ObjectStorage } from '../../src/storage/types.js';
import { parseAudio } from '../parsers/audio.js';
import { checkFseqSize, parseFseqHeader } from '../parsers/fseq.js';
import { parseXsq } from '../parsers/xsq.js';
import { isParseError } from '../parsers/errors.js';
import { PreviewInputError } from '../previews/errors.js';
import { readImageMetadata, type ImageMetadata } from '../previews/image.js';
import { HEAD_BYTES, readHead } from './digest.js';

export interface BlobToExtract {
  storageKey: string;
  size: number;
  kind: string;
  mimeType: string | null;
}

// The FSEQ header ends at the channel data offset, a u16: it always fits in the first 64 KiB.
const FSEQ_HEADER_BYTES = HEAD_BYTES + 16;

export async function extractMetadata(
  storage: ObjectStorage,
  blob: BlobToExtract,
  limits: { xsqMaxBytes: number },
): Promise<Record<string, unknown> | null> {
  switch (blob.kind) {
    case 'fseq': {
      const end = Math.min(blob.size, FSEQ_HEADER_BYTES) - 1;
      const head = end < 0 ? Buffer.alloc(0) : await readHead(await storage.read(blob.storageKey, { start: 0, end }), end + 1);
      const header = parseFseqHeader(head, { fileSize: blob.size });
      const sizeError = checkFseqSize(header, blob.size);
      if (sizeError) throw sizeError;
      return { ...header };
    }
    case 'xsq':
      return { ...(await parseXsq(await storage.read(blob.storageKey, undefined, blob.size), { maxBytes: limits.xsqMaxBytes })) };
    case 'audio':
      return {
        ...(await parseAudio(await storage.read(blob.storageKey, undefined, blob.size), {
          size: blob.size,
          ...(blob.mimeType ? { mimeType: blob.mimeType } : {}),
        })),
      };
    case 'image':
      return imageMetadata(async () => readImageMetadata(await storage.read(blob.storageKey, undefined, blob.size)));
    default:
      // video, other: nothing we extract (yet).
      return null;
  }
}

/**
 * An image's facts, or null when libvips cannot read them: a damaged image is still served as
 * uploaded (not rejected); its previews record says why it has none.
 */
async function imageMetadata(read: () => Promise<ImageMetadata>): Promise<Record<string, unknown> | null> {
  try {
    return { ...(await read()) };
  } catch (error) {
    if (error instanceof PreviewInputError) return null;
    throw error;
  }
}

/**
 * Metadata from an upload's first bytes, or null when those do not settle it (a job extracts it):
 * the head kinds from the head (metadataFromHead), XSQ, audio and images when the head is the whole file.
 * Invalid content is a validation error, as extractMetadata's ParseError is; any other failure
 * leaves it to the job, which retries.
 */
export async function metadataFromFirstBytes(
  blob: { kind: string; size: number; mimeType: string | null },
  head: Buffer,
): Promise<HeadOutcome | null> {
  if (blob.kind !== 'xsq' && blob.kind !== 'audio' && blob.kind !== 'image') return metadataFromHead(blob.kind, head, blob.size);
  if (head.length !== blob.size) return null;
  if (blob.kind === 'image') {
    return { metadata: await imageMetadata(() => readImageMetadata([head])), validationError: null, metadataError: null };
  }
  try {
    const metadata =
      blob.kind === 'xsq'
        ? { ...(await parseXsq(Readable.from([head]), { maxBytes: blob.size })) }
        : { ...(await parseAudio(Readable.from([head]), { size: blob.size, ...(blob.mimeType ? { mimeType: blob.mimeType } : {}) })) };
    return { metadata, validationError: null, metadataError: null };
  } catch (error) {
    if (isParseError(error)) return { metadata: null, validationError: error.message, metadataError: null };
    return null;
  }
}

export interface HeadOutcome {
  metadata: Record<string, unknown> | null;
  validationError: string | null;
  metadataError: null;
}

/**
 * Metadata for the kinds whose facts are all in the first bytes (FSEQ: its header) or that have
 * none we extract (video, other), straight from the head the digest pass already read:
 * no second read and no separate job. Null for kinds that need the whole stream (audio, XSQ, image).
 */
export function metadataFromHead(kind: string, head: Buffer, size: number): HeadOutcome | null {
  switch (kind) {
    case 'audio':
    case 'xsq':
    case 'image':
      return null;
    case 'fseq':
      try {
        const header = parseFseqHeader(head, { fileSize: size });
        const sizeError = checkFseqSize(header, size);
        if (sizeError) throw sizeError;
        return { metadata: { ...header }, validationError: null, metadataError: null };
      } catch (error) {
        if (isParseError(error)) return { metadata: null, validationError: error.message, metadataError: null };
        throw error;
      }
    default:
      return { metadata: null, validationError: null, metadataError: null };
  }
}
