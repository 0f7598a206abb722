// Strict tus 1.0.0 request validation, ahead of @tus/server: every malformed header gets the
// status the specification asks for and a JSON error that names the header, instead of a
// generic 400 (or, for some, a 500). Pure: headers in, an AppError (or null) out.
import { AppError } from '../errors.js';

export const TUS_VERSION = '1.0.0';

/** Checksum algorithms (Tus-Checksum-Algorithm) and the digest length each produces. */
export const CHECKSUM_ALGORITHMS: Record<string, { node: string; bytes: number }> = {
  sha1: { node: 'sha1', bytes: 20 },
  md5: { node: 'md5', bytes: 16 },
  sha256: { node: 'sha256', bytes: 32 },
  sha512: { node: 'sha512', bytes: 64 },
  crc32: { node: 'crc32', bytes: 4 },
};

export const TUS_EXTENSIONS = [
  'creation',
  'creation-with-upload',
  'creation-defer-length',
  'termination',
  'expiration',
  'checksum',
  'checksum-trailer',
  'concatenation',
  'concatenation-unfinished',
];

/** Upload-Metadata beyond this is refused: names and types are short; this is not a payload. */
export const MAX_METADATA_BYTES = 4096;

export type Headers = Record<string, string | string[] | undefined>;

const DIGITS = /^\d{1,16}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** One request header's value (repeated headers joined, as HTTP folds them). */
export function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

const bad = (code: string, message: string, details?: Record<string, unknown>) => new AppError(400, code, message, details);

/** The request has a body: a Content-Length above 0, or any Transfer-Encoding (chunked). */
export function hasBody(headers: Headers): boolean {
  const length = header(headers, 'content-length');
  return header(headers, 'transfer-encoding') !== undefined || (length !== undefined && Number(length) > 0);
}

function isOffsetOctetStream(headers: Headers): boolean {
  return header(headers, 'content-type')?.split(';')[0]?.trim().toLowerCase() === 'application/offset+octet-stream';
}

function validInteger(value: string): boolean {
  return DIGITS.test(value) && Number.isSafeInteger(Number(value));
}

/** Parses Upload-Metadata strictly; throws an AppError naming the offending pair. */
export function parseMetadata(value: string): Record<string, string | null> {
  if (Buffer.byteLength(value) > MAX_METADATA_BYTES) {
    throw bad('METADATA_TOO_LARGE', `Upload-Metadata may be at most ${MAX_METADATA_BYTES} bytes`);
  }
  const result: Record<string, string | null> = {};
  for (const pair of value.split(',')) {
    const trimmed = pair.trim();
    const [key, encoded, ...rest] = trimmed.split(' ');
    if (!key || rest.length > 0 || /[\s,]/.test(key) || !/^[\x21-\x7e]+$/.test(key)) {
      throw bad('INVALID_METADATA', `Upload-Metadata pair "${trimmed.slice(0, 40)}" must be "key base64value"`);
    }
    if (key in result) throw bad('INVALID_METADATA', `Upload-Metadata key "${key}" appears twice`);
    if (encoded !== undefined && encoded !== '' && !BASE64.test(encoded)) {
      throw bad('INVALID_METADATA', `the Upload-Metadata value of "${key}" is not valid base64`);
    }
    result[key] = encoded ? Buffer.from(encoded, 'base64').toString('utf8') : null;
  }
  return result;
}

export interface ParsedChecksum {
  algorithm: string;
  digest: Buffer;
}

/**
 * `Upload-Checksum: <algorithm> <base64 digest>`. Without an algorithm name it is malformed (400);
 * an algorithm not supported is 400 too. A value that cannot be a digest of a supported algorithm
 * (not base64, or of the wrong length) matches no body: 460 CHECKSUM_MISMATCH, as a wrong digest.
 */
export function parseChecksum(value: string): ParsedChecksum {
  const match = /^([a-z0-9-]+) (.*)$/s.exec(value.trim());
  if (!match) throw bad('INVALID_CHECKSUM', 'Upload-Checksum must be "<algorithm> <base64 digest>"');
  const [, algorithm, encoded] = match as unknown as [string, string, string];
  const known = CHECKSUM_ALGORITHMS[algorithm];
  if (!known) {
    throw bad('CHECKSUM_ALGORITHM_UNSUPPORTED', `checksum algorithm "${algorithm}" is not supported`, {
      supported: Object.keys(CHECKSUM_ALGORITHMS),
    });
  }
  const digest = Buffer.from(encoded, 'base64');
  if (!BASE64.test(encoded) || digest.length !== known.bytes) {
    throw new AppError(
      460,
      'CHECKSUM_MISMATCH',
      `the Upload-Checksum value cannot be a ${algorithm} digest (${known.bytes} bytes, base64-encoded), so no body matches it; nothing was stored`,
      { algorithm },
    );
  }
  return { algorithm, digest };
}

export type Concat = { type: 'partial' } | { type: 'final'; urls: string[] };

export function parseConcat(value: string): Concat {
  if (value === 'partial') return { type: 'partial' };
  const match = /^final;(.+)$/.exec(value);
  const urls = match?.[1]?.trim().split(/ +/).filter(Boolean) ?? [];
  if (!match || urls.length === 0 || urls.length > 1000) {
    throw bad('INVALID_UPLOAD_CONCAT', 'Upload-Concat must be "partial" or "final;<url> <url> ..."');
  }
  return { type: 'final', urls };
}

/**
 * Checks a tus request's headers for its (effective) method. OPTIONS needs nothing: the Server
 * MUST ignore Tus-Resumable there.
 */
export function validateTusRequest(method: string, headers: Headers, options: { maxUploadSize: number }): AppError | null {
  if (method === 'OPTIONS') return null;
  try {
    const resumable = header(headers, 'tus-resumable');
    if (resumable !== TUS_VERSION) {
      return new AppError(
        412,
        resumable === undefined ? 'TUS_RESUMABLE_REQUIRED' : 'TUS_VERSION_UNSUPPORTED',
        resumable === undefined
          ? 'the Tus-Resumable header is required (this server speaks tus 1.0.0)'
          : `tus version ${JSON.stringify(resumable).slice(0, 40)} is not supported; use 1.0.0`,
        { supported: [TUS_VERSION] },
        { 'Tus-Version': TUS_VERSION },
      );
    }

    const metadata = header(headers, 'upload-metadata');
    if (metadata !== undefined && (method === 'POST' || method === 'PATCH')) parseMetadata(metadata);

    const checksum = header(headers, 'upload-checksum');
    if (checksum !== undefined) parseChecksum(checksum);

    const length = header(headers, 'upload-length');
    if (length !== undefined && !validInteger(length)) {
      return bad('INVALID_UPLOAD_LENGTH', 'Upload-Length must be a non-negative whole number');
    }
    if (length !== undefined && Number(length) > options.maxUploadSize) {
      return new AppError(413, 'FILE_TOO_LARGE', `uploads may be at most ${options.maxUploadSize} bytes (Tus-Max-Size)`, {
        limit: options.maxUploadSize,
        requested: Number(length),
      });
    }

    if (method === 'POST') {
      const defer = header(headers, 'upload-defer-length');
      const concat = header(headers, 'upload-concat');
      const parsedConcat = concat === undefined ? undefined : parseConcat(concat);
      if (defer !== undefined && defer !== '1') return bad('INVALID_UPLOAD_DEFER_LENGTH', 'Upload-Defer-Length must be 1');
      if (parsedConcat?.type === 'final') {
        if (length !== undefined || defer !== undefined) {
          return bad('INVALID_UPLOAD_LENGTH', 'a final upload takes its length from its partial uploads: send no Upload-Length');
        }
      } else if ((length === undefined) === (defer === undefined)) {
        return bad('INVALID_UPLOAD_LENGTH', 'send exactly one of Upload-Length or Upload-Defer-Length: 1');
      }
    }

    if (method === 'POST' && hasBody(headers) && !isOffsetOctetStream(headers)) {
      // creation-with-upload: bytes of any other type are not upload bytes; nothing is created.
      return new AppError(
        415,
        'INVALID_CONTENT_TYPE',
        'a POST that carries bytes (creation-with-upload) must have Content-Type: application/offset+octet-stream',
      );
    }

    if (method === 'PATCH') {
      if (!isOffsetOctetStream(headers)) {
        return new AppError(415, 'INVALID_CONTENT_TYPE', 'PATCH requests must have Content-Type: application/offset+octet-stream');
      }
      const offset = header(headers, 'upload-offset');
      if (offset === undefined) return bad('MISSING_UPLOAD_OFFSET', 'the Upload-Offset header is required');
      if (!validInteger(offset)) return bad('INVALID_UPLOAD_OFFSET', 'Upload-Offset must be a non-negative whole number');
    }
    return null;
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
}
