// The one place where errors become HTTP responses: {"error": {"code", "message", ...details}}
// with the right status. Everything else throws typed errors and never formats a response.
import { ERRORS } from '@tus/utils';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import { AppError, codeForStatus } from '../errors.js';
import { ObjectNotFoundError, StorageUnavailableError } from '../storage/types.js';

export interface ErrorBody {
  error: { code: string; message: string; [detail: string]: unknown };
}

export interface HttpError {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
}

/** @tus/server's error objects, named so clients get a stable code, with clearer messages. */
const TUS_ERRORS: Record<string, { code: string; message: string; status?: number; headers?: Record<string, string> }> = {
  MISSING_OFFSET: { code: 'MISSING_UPLOAD_OFFSET', message: 'the Upload-Offset header is required' },
  ABORTED: { code: 'REQUEST_ABORTED', message: 'the request was aborted (another request took over this upload)' },
  INVALID_TERMINATION: { code: 'UPLOAD_FINISHED', message: 'a finished upload cannot be terminated' },
  ERR_LOCK_TIMEOUT: {
    code: 'UPLOAD_LOCKED',
    message: 'another request is writing to this upload; retry after it finishes',
    status: 423,
    headers: { 'Retry-After': '2' },
  },
  INVALID_CONTENT_TYPE: {
    code: 'INVALID_CONTENT_TYPE',
    message: 'PATCH requests must have Content-Type: application/offset+octet-stream',
    status: 415,
  },
  FILE_NOT_FOUND: { code: 'NOT_FOUND', message: 'upload not found' },
  INVALID_OFFSET: { code: 'OFFSET_MISMATCH', message: 'Upload-Offset does not match the current offset of the upload' },
  FILE_NO_LONGER_EXISTS: { code: 'UPLOAD_EXPIRED', message: 'this upload no longer exists' },
  ERR_SIZE_EXCEEDED: { code: 'BODY_EXCEEDS_UPLOAD_LENGTH', message: 'the request body goes beyond Upload-Length' },
  ERR_MAX_SIZE_EXCEEDED: { code: 'FILE_TOO_LARGE', message: 'the upload is larger than this server accepts' },
  INVALID_LENGTH: {
    code: 'INVALID_UPLOAD_LENGTH',
    message: 'send exactly one of Upload-Length or Upload-Defer-Length, with a valid value',
  },
  INVALID_METADATA: { code: 'INVALID_METADATA', message: 'Upload-Metadata is malformed (key and base64 value pairs)' },
  UNKNOWN_ERROR: { code: 'INTERNAL_ERROR', message: 'something went wrong on the server' },
  FILE_WRITE_ERROR: {
    code: 'STORAGE_WRITE_FAILED',
    message: 'the received bytes could not be stored; resume from the offset a HEAD request reports',
    status: 503,
  },
  UNSUPPORTED_CONCATENATION_EXTENSION: { code: 'CONCATENATION_UNSUPPORTED', message: 'concatenation is not supported' },
  UNSUPPORTED_CREATION_DEFER_LENGTH_EXTENSION: {
    code: 'DEFER_LENGTH_UNSUPPORTED',
    message: 'creation-defer-length is not supported',
  },
  UNSUPPORTED_EXPIRATION_EXTENSION: { code: 'EXPIRATION_UNSUPPORTED', message: 'expiration is not supported' },
};

const TUS_ERROR_NAMES = new Map<unknown, string>(Object.entries(ERRORS).map(([name, value]) => [value, name]));

function make(status: number, code: string, message: string, details: Record<string, unknown> = {}, headers = {}): HttpError {
  return { status, body: { error: { code, message, ...details } }, headers };
}

/** Maps anything thrown while serving a request to the response the client gets. */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof AppError) return make(error.status, error.code, error.message, error.details, error.headers);

  const tusName = TUS_ERROR_NAMES.get(error);
  if (tusName) {
    const known = TUS_ERRORS[tusName];
    const status = known?.status ?? (error as { status_code: number }).status_code;
    return make(status, known?.code ?? codeForStatus(status), known?.message ?? String((error as { body: string }).body).trim(), {}, known?.headers);
  }

  if (error instanceof ObjectNotFoundError) return make(404, 'NOT_FOUND', 'the stored file was not found');
  if (error instanceof StorageUnavailableError) {
    return make(503, 'STORAGE_UNAVAILABLE', 'file storage is unavailable; retry shortly', {}, { 'Retry-After': '5' });
  }
  if (isDatabaseUnavailable(error)) {
    return make(503, 'DATABASE_UNAVAILABLE', 'the database is unavailable; retry shortly', {}, { 'Retry-After': '5' });
  }
  // node-postgres pools (the upload locker's, graphile-worker's) when every connection is in use.
  if (error instanceof Error && /timeout exceeded when trying to connect/i.test(error.message)) {
    return make(503, 'DATABASE_BUSY', 'every database connection is in use; retry shortly', {}, { 'Retry-After': '5' });
  }

  // Errors Fastify raises itself (bad JSON, schema validation, body too large, ...).
  const fastify = error as { statusCode?: number; code?: string; message?: string; validation?: unknown };
  if (typeof fastify?.statusCode === 'number' && fastify.statusCode >= 400 && fastify.statusCode < 500) {
    const code = fastify.validation ? 'VALIDATION_ERROR' : codeForStatus(fastify.statusCode);
    return make(fastify.statusCode, code, fastify.message ?? 'bad request');
  }

  // @tus/server-shaped objects thrown by other code paths ({status_code, body}).
  const tusShaped = error as { status_code?: number; body?: string };
  if (typeof tusShaped?.status_code === 'number' && tusShaped.status_code < 500) {
    return make(tusShaped.status_code, codeForStatus(tusShaped.status_code), String(tusShaped.body ?? '').trim());
  }

  return make(500, 'INTERNAL_ERROR', 'something went wrong on the server; it has been logged');
}
