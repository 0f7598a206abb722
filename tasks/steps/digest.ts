// One streaming pass over stored bytes: SHA-256, MD5, the exact size and the first bytes (for
// sniffing). Memory stays at one chunk plus the 64 KiB head, whatever the file size.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { ContentDigest, FirstBytes } from '../../src/db/jobs.js';
import { ObjectNotFoundError, type ObjectStorage } from '../../src/storage/types.js';

export const HEAD_BYTES = 64 * 1024;

/** A digest whose first bytes were summarised as they arrived (tasks/steps/first-bytes.ts): no head. */
export interface SummarizedDigest {
  sha256: string;
  md5: string;
  size: number;
  first: FirstBytes;
}

export interface Digest {
  sha256: string;
  md5: string;
  size: number;
  head: Buffer;
}

export async function digestStream(stream: Readable): Promise<Digest> {
  const sha256 = createHash('sha256');
  const md5 = createHash('md5');
  const headChunks: Buffer[] = [];
  let headLength = 0;
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    sha256.update(chunk);
    md5.update(chunk);
    size += chunk.length;
    if (headLength < HEAD_BYTES) {
      const part = chunk.subarray(0, HEAD_BYTES - headLength);
      // Copy: the stream may reuse its buffers.
      headChunks.push(Buffer.from(part));
      headLength += part.length;
    }
  }
  return { sha256: sha256.digest('hex'), md5: md5.digest('hex'), size, head: Buffer.concat(headChunks, headLength) };
}

/** Reads at most `bytes` from the start of a stream, then stops reading. */
export async function readHead(stream: Readable, bytes = HEAD_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const part = chunk.subarray(0, bytes - length);
      chunks.push(Buffer.from(part));
      length += part.length;
      if (length >= bytes) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks, length);
}

/**
 * The digest of stored bytes whose hashes are known already (computed as they arrived): only the
 * head is read, for sniffing. The stored length is still checked against what the upload declared.
 */
export async function digestWithKnownHashes(storage: ObjectStorage, key: string, size: number, known: ContentDigest): Promise<Digest> {
  const stored = await storage.size(key);
  if (stored === null) throw new ObjectNotFoundError(key);
  const headLength = Math.min(size, HEAD_BYTES);
  const head = headLength === 0 ? Buffer.alloc(0) : await readHead(await storage.read(key, { start: 0, end: headLength - 1 }), headLength);
  return { sha256: known.sha256, md5: known.md5, size: stored, head };
}

/**
 * The digest made entirely on arrival (hashes and first-bytes summary): nothing is read, only the
 * stored length is asked for, to be checked against what the upload declared.
 */
export async function digestFromArrival(storage: ObjectStorage, key: string, known: ContentDigest, first: FirstBytes): Promise<SummarizedDigest> {
  const stored = await storage.size(key);
  if (stored === null) throw new ObjectNotFoundError(key);
  return { sha256: known.sha256, md5: known.md5, size: stored, first };
}
