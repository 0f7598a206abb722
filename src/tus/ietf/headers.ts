// The request headers of the IETF "Resumable Uploads for HTTP" draft (draft-ietf-httpbis-
// resumable-upload), per interop version: which header says whether a request completes the
// upload, whether an append must be labelled application/partial-upload, whether responses carry
// Upload-Limit. Pure: headers in, a parsed request (or an IetfProblem) out.
//
//  interop  draft        completion header                 append Content-Type        Upload-Limit  progress 104s
//  3        -01          Upload-Incomplete (?1 = more)     any                        no            no
//  4        -02          Upload-Complete   (?1 = last)     any                        no            no
//  5        -03          Upload-Complete                   any                        no            yes
//  6        -04, -05     Upload-Complete                   application/partial-upload yes           yes
//  7        -06 … -11    Upload-Complete                   application/partial-upload yes           yes
//  8        editor's     Upload-Complete                   application/partial-upload yes           yes
// Progress 104s (Upload-Offset while a body arrives) came with -03: "later offset retrievals MUST
// NOT receive an upload offset that is less than the offset reported", so only durable offsets.
// Upload-Length (a request header since interop 7) is accepted from every version: tus-js-client's
// IETF modes (interop 5 and 6) send it, and it can only make the length known earlier.
import contentDisposition from 'content-disposition';
import { header, type Headers } from '../protocol.js';

export const IETF_INTEROP_VERSIONS = [3, 4, 5, 6, 7, 8] as const;
export type InteropVersion = (typeof IETF_INTEROP_VERSIONS)[number];

export const PROBLEM_TYPES = {
  inconsistentLength: 'https://iana.org/assignments/http-problem-types#inconsistent-upload-length',
  mismatchingOffset: 'https://iana.org/assignments/http-problem-types#mismatching-upload-offset',
  completedUpload: 'https://iana.org/assignments/http-problem-types#completed-upload',
} as const;

/** An error of the draft's wire protocol: status, an RFC 9457 problem type (or none), headers. */
export class IetfProblem extends Error {
  constructor(
    readonly status: number,
    readonly type: string | null,
    readonly title: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(title);
    this.name = 'IetfProblem';
  }
}

/**
 * The interop version of a request: the value of `Upload-Draft-Interop-Version` when it is one we
 * support, else null (the request is a plain one: tus, or nothing resumable; never a 104).
 */
export function interopVersionOf(headers: Headers): InteropVersion | null {
  const value = header(headers, 'upload-draft-interop-version')?.trim();
  // Exactly the version's number, as the draft and tusd compare it (no sign, no leading zero).
  if (value === undefined || !/^[1-9]\d?$/.test(value)) return null;
  const version = Number(value);
  return (IETF_INTEROP_VERSIONS as readonly number[]).includes(version) ? (version as InteropVersion) : null;
}

/** Whether `Upload-Limit` is part of this version's responses. */
export const hasUploadLimit = (version: InteropVersion): boolean => version >= 6;

/** Whether 104 interim responses may report the offset while a body arrives. */
export const hasProgressInterims = (version: InteropVersion): boolean => version >= 5;

/** Whether appends must be labelled `Content-Type: application/partial-upload`. */
export const requiresPartialUploadType = (version: InteropVersion): boolean => version >= 6;

/** A Structured Field Boolean (`?0`/`?1`); undefined when absent. */
function sfBoolean(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (trimmed === '?1') return true;
  if (trimmed === '?0') return false;
  throw new IetfProblem(400, null, `${name} must be a Structured Field Boolean: ?0 or ?1`);
}

/** A Structured Field Integer that is a byte count; undefined when absent. */
function sfLength(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (!/^\d{1,15}$/.test(trimmed)) throw new IetfProblem(400, null, `${name} must be a non-negative integer`);
  return Number(trimmed);
}

/**
 * Whether the request completes the upload: `Upload-Complete` (interop 4+), or the inverse of
 * `Upload-Incomplete` (interop 3, where its absence means complete). Undefined when a version
 * that needs the header lacks it.
 */
export function requestCompletes(version: InteropVersion, headers: Headers): boolean | undefined {
  if (version === 3) {
    const incomplete = sfBoolean(header(headers, 'upload-incomplete'), 'Upload-Incomplete');
    return incomplete === undefined ? true : !incomplete;
  }
  return sfBoolean(header(headers, 'upload-complete'), 'Upload-Complete');
}

/** The response header saying whether the upload is complete, in the request's version. */
export function completionHeader(version: InteropVersion, complete: boolean): Record<string, string> {
  if (version === 3) return { 'Upload-Incomplete': complete ? '?0' : '?1' };
  return { 'Upload-Complete': complete ? '?1' : '?0' };
}

/** The declared file of a creation: `Content-Disposition` (filename, filename*) and Content-Type. */
export function declaredRepresentation(headers: Headers): { filename: string | null; mimeType: string | null } {
  let filename: string | null = null;
  const disposition = header(headers, 'content-disposition');
  if (disposition !== undefined && disposition.trim() !== '') {
    try {
      filename = contentDisposition.parse(disposition).parameters.filename ?? null;
    } catch {
      throw new IetfProblem(400, null, 'Content-Disposition is malformed (RFC 6266)');
    }
  }
  const type = header(headers, 'content-type')?.split(';')[0]?.trim().toLowerCase() || null;
  return { filename, mimeType: type };
}

export interface CreationRequest {
  complete: boolean;
  /** The length of the whole representation when the request tells it, else null (deferred). */
  length: number | null;
  contentLength: number | null;
}

/**
 * A creation (`POST`): whether it completes the upload and the length it indicates, from
 * `Upload-Length` or from `Content-Length` with `Upload-Complete: ?1`; indications that disagree
 * are the inconsistent-upload-length problem.
 */
export function parseCreation(version: InteropVersion, headers: Headers): CreationRequest {
  const complete = requestCompletes(version, headers);
  if (complete === undefined) {
    throw new IetfProblem(400, null, 'a resumable upload creation carries Upload-Complete (?0 or ?1)');
  }
  const uploadLength = sfLength(header(headers, 'upload-length'), 'Upload-Length');
  const contentLength = sfLength(header(headers, 'content-length'), 'Content-Length') ?? null;
  const inconsistent = (detail: string) => new IetfProblem(400, PROBLEM_TYPES.inconsistentLength, `inconsistent upload length: ${detail}`);
  if (uploadLength !== undefined && contentLength !== null) {
    if (complete && contentLength !== uploadLength) throw inconsistent(`Upload-Length is ${uploadLength} but this completing request carries ${contentLength} bytes`);
    if (contentLength > uploadLength) throw inconsistent(`Upload-Length is ${uploadLength} but the request carries ${contentLength} bytes`);
  }
  const length = uploadLength ?? (complete ? contentLength : null);
  return { complete, length, contentLength };
}

export interface AppendRequest {
  complete: boolean;
  offset: number;
  contentLength: number | null;
  uploadLength: number | null;
}

/** An append (`PATCH`): Upload-Offset, completion, and the media type its version requires. */
export function parseAppend(version: InteropVersion, headers: Headers): AppendRequest {
  if (requiresPartialUploadType(version)) {
    const type = header(headers, 'content-type')?.split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/partial-upload') {
      throw new IetfProblem(415, null, `an append (interop version ${version}) is labelled Content-Type: application/partial-upload`);
    }
  }
  const offset = sfLength(header(headers, 'upload-offset'), 'Upload-Offset');
  if (offset === undefined) throw new IetfProblem(400, null, 'an append carries Upload-Offset');
  const complete = requestCompletes(version, headers);
  if (complete === undefined) throw new IetfProblem(400, null, 'an append carries Upload-Complete (?0 or ?1)');
  const contentLength = sfLength(header(headers, 'content-length'), 'Content-Length') ?? null;
  const uploadLength = sfLength(header(headers, 'upload-length'), 'Upload-Length') ?? null;
  if (uploadLength !== null && contentLength !== null) {
    if (offset + contentLength > uploadLength || (complete && offset + contentLength !== uploadLength)) {
      throw new IetfProblem(400, PROBLEM_TYPES.inconsistentLength, `inconsistent upload length: Upload-Length is ${uploadLength}, the append ends at ${offset + contentLength}`);
    }
  }
  return { complete, offset, contentLength, uploadLength };
}

/** `Upload-Limit` (a Structured Field Dictionary) for this server's limits. */
export function uploadLimit(limits: { maxSize: number; maxAgeMs: number }): string {
  return `max-size=${limits.maxSize}, min-size=0, max-age=${Math.max(1, Math.floor(limits.maxAgeMs / 1000))}`;
}
