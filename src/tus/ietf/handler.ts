// The IETF "Resumable Uploads for HTTP" draft (interop versions 3–8) on the tus endpoint. Only the
// wire protocol differs: a draft request is rewritten into the equivalent tus 1.0.0 request and
// served by the endpoint's one tus path — the same target rule, authentication, ownership, records,
// type policy, quota, locker, store, body handling, expiry, finish and metrics — and its answer is
// rewritten back into the draft's: a 104 interim response as soon as a creation exists,
// Upload-Complete (Upload-Incomplete for interop 3), Upload-Limit, problem types.
//
//   draft                                   tus
//   POST + Upload-Complete / -Length        POST + Upload-Length (or Upload-Defer-Length) + body
//     Content-Disposition, Content-Type       Upload-Metadata filename, filetype
//   HEAD → 204 + Upload-Complete            HEAD → 200
//   PATCH + Upload-Offset (+ ?1: length)    PATCH + Upload-Offset (+ Upload-Length when deferred)
//   DELETE → 204                            DELETE → 204
import type { IncomingMessage } from 'node:http';
import { Counter } from 'prom-client';
import type { Config } from '../../config/index.js';
import type { UploadRow } from '../../db/schema.js';
import { AppError } from '../../errors.js';
import { registry } from '../../metrics.js';
import { TUS_VERSION } from '../protocol.js';
import type { RequestContext } from '../request-context.js';
import { removeRequestHeader, setRequestHeader } from '../request-headers.js';
import {
  completionHeader,
  declaredRepresentation,
  hasProgressInterims,
  hasUploadLimit,
  IetfProblem,
  parseAppend,
  parseCreation,
  PROBLEM_TYPES,
  uploadLimit,
  type InteropVersion,
} from './headers.js';
import { writeInterimResponse } from './interim.js';

/** The request as the endpoint hands it over (src/tus/endpoint.ts EndpointRequest). */
export interface IetfRequest {
  req: IncomingMessage;
  res: import('node:http').ServerResponse;
  baseUrl: string;
  /** Runs once the endpoint knows the upload, before a byte moves: a Response ends the request there. */
  preflight?: (upload: UploadRow) => Response | null;
  /** Runs once the upload exists, before a byte of the body is stored. */
  beforeStore?: (uploadId: string) => void;
  /** The durable offset while the body is stored. */
  durableProgress?: (offset: number) => void;
  /** The request completes an upload of unknown length with what its body brings. */
  completeWithArrival?: boolean;
}

/** The tus path's answer, and the context it decided (null when it answered before deciding). */
export interface TusAnswer {
  response: Response;
  context: RequestContext | null;
}

/** Serves the rewritten request on the tus path of the endpoint. */
export type TusPath<R extends IetfRequest> = (request: R) => Promise<TusAnswer>;

export interface IetfDeps {
  config: Pick<Config, 'tusPath' | 'maxUploadSize' | 'uploadExpiryMs'>;
  /** The file record as GET /api/files/:id returns it, for the completing request's answer. */
  fileRecord?: (uploadId: string, ownerId: string) => Promise<unknown>;
}

/**
 * IETF-draft requests by interop version, method and status: they are also counted in the tus_*
 * metrics (they are served by the same path); this tells the two protocols apart.
 */
export const ietfRequests = new Counter({
  name: 'tus_ietf_requests_total',
  help: 'Requests to the upload endpoint in the IETF resumable upload draft, by interop version, method and status',
  labelNames: ['interop_version', 'method', 'status'] as const,
  registers: [registry],
});

/** Response headers browsers may read on draft responses. */
const EXPOSED = ['Location', 'Upload-Offset', 'Upload-Length', 'Upload-Complete', 'Upload-Incomplete', 'Upload-Limit', 'Upload-Draft-Interop-Version', 'Upload-Expires', 'Retry-After', 'X-Request-ID'];

/** tus headers that mean nothing to a draft client. */
const TUS_ONLY = new Set(['tus-resumable', 'tus-version', 'tus-extension', 'tus-max-size', 'tus-checksum-algorithm', 'upload-defer-length', 'upload-metadata', 'upload-concat', 'access-control-expose-headers']);

const OCTET_STREAM = 'application/offset+octet-stream';

/** A tus PATCH does not continue an upload created over the draft (HEAD and DELETE may act on it). */
export function tusMayContinue(method: string, upload: UploadRow): AppError | null {
  if (method !== 'PATCH' || upload.transport !== 'ietf') return null;
  return new AppError(
    409,
    'PROTOCOL_MISMATCH',
    `this upload was created with the IETF resumable upload draft (interop version ${upload.interopVersion ?? '?'}); continue it with that protocol`,
    { transport: 'ietf', interopVersion: upload.interopVersion },
  );
}


const b64 = (value: string) => Buffer.from(value, 'utf8').toString('base64');

/** The length the endpoint declared when a request completed an upload with what arrived. */
function declaredOnArrival(response: Response): number | null {
  const header = response.headers.get('Upload-Length');
  return header === null ? null : Number(header);
}

export interface IetfHandler {
  handle<R extends IetfRequest>(request: R, version: InteropVersion, tusPath: TusPath<R>): Promise<Response>;
}

export function createIetfHandler(deps: IetfDeps): IetfHandler {
  const { config } = deps;
  const limit = uploadLimit({ maxSize: config.maxUploadSize, maxAgeMs: config.uploadExpiryMs });

  function common(version: InteropVersion, always = false): Record<string, string> {
    return {
      'Upload-Draft-Interop-Version': String(version),
      'Access-Control-Expose-Headers': EXPOSED.join(', '),
      ...(always || hasUploadLimit(version) ? { 'Upload-Limit': limit } : {}),
    };
  }

  function problem(version: InteropVersion, error: IetfProblem): Response {
    const body = JSON.stringify({ type: error.type ?? 'about:blank', title: error.title, status: error.status, ...error.extra });
    return new Response(body, {
      status: error.status,
      headers: { ...common(version), ...error.headers, 'Content-Type': 'application/problem+json', 'Cache-Control': 'no-store' },
    });
  }

  /** The tus answer in draft clothes: tus-only headers go, the draft's common ones come. */
  function reshape(response: Response, version: InteropVersion, extra: Record<string, string> = {}, status = response.status, body: BodyInit | null = response.body): Response {
    const headers = new Headers();
    response.headers.forEach((value, name) => {
      if (!TUS_ONLY.has(name)) headers.set(name, value);
    });
    for (const [name, value] of Object.entries({ ...common(version), ...extra })) headers.set(name, value);
    if (status === 204 || body === null) headers.delete('content-length');
    return new Response(status === 204 ? null : body, { status, headers });
  }

  /**
   * Progress 104s (interop 5+) from the store's durable offsets: each one past the last announced
   * and short of the end (the final response tells that one). Never a Location (the draft forbids
   * it after the first 104). Undefined for versions without them.
   */
  function progressInterims(request: IetfRequest, version: InteropVersion, from: number, length: () => number | null): ((offset: number) => void) | undefined {
    if (!hasProgressInterims(version)) return undefined;
    let announced = from;
    return (offset) => {
      const end = length();
      if (offset <= announced || (end !== null && offset >= end)) return;
      announced = offset;
      writeInterimResponse(request.res, 104, 'Upload Resumption Supported', {
        'Upload-Draft-Interop-Version': String(version),
        'Upload-Offset': String(offset),
      });
    };
  }

  /** The completing request answers with what the target resource produces: the file record. */
  async function completed(response: Response, version: InteropVersion, context: RequestContext | null, uploadId: string | undefined, extra: Record<string, string>): Promise<Response> {
    const ownerId = context?.principal.ownerId;
    const record = uploadId && ownerId && deps.fileRecord ? await deps.fileRecord(uploadId, ownerId).catch(() => null) : null;
    const headers = { ...extra, ...completionHeader(version, true) };
    // A complete upload does not expire (the tus path dates a creation of unknown length).
    response.headers.delete('Upload-Expires');
    if (!record) return reshape(response, version, headers, 204, null);
    const body = JSON.stringify(record);
    return reshape(response, version, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)) }, 200, body);
  }

  async function create<R extends IetfRequest>(request: R, version: InteropVersion, tusPath: TusPath<R>): Promise<Response> {
    const { req, res } = request;
    const creation = parseCreation(version, req.headers);
    // Completing with no length indicated (a chunked body): the length is what arrives.
    const completeWithArrival = creation.complete && creation.length === null;
    setRequestHeader(req, 'tus-resumable', TUS_VERSION);
    if (creation.length !== null) {
      setRequestHeader(req, 'upload-length', String(creation.length));
      removeRequestHeader(req, 'upload-defer-length');
    } else {
      removeRequestHeader(req, 'upload-length');
      setRequestHeader(req, 'upload-defer-length', '1');
    }
    // tus-js-client's IETF modes send tus metadata; other clients name the file the HTTP way.
    if (req.headers['upload-metadata'] === undefined) {
      const { filename, mimeType } = declaredRepresentation(req.headers);
      const pairs = [
        ...(filename !== null ? [`filename ${b64(filename)}`] : []),
        ...(mimeType !== null && mimeType !== 'application/partial-upload' && mimeType !== OCTET_STREAM ? [`filetype ${b64(mimeType)}`] : []),
      ];
      if (pairs.length > 0) setRequestHeader(req, 'upload-metadata', pairs.join(','));
    }
    // The body, empty or not, is the upload's first bytes.
    setRequestHeader(req, 'content-type', OCTET_STREAM);
    // The 104 goes the moment the upload exists, before its first byte is stored.
    const beforeStore = (uploadId: string) => {
      writeInterimResponse(res, 104, 'Upload Resumption Supported', {
        Location: `${request.baseUrl}${config.tusPath}/${uploadId}`,
        'Upload-Draft-Interop-Version': String(version),
        ...(hasUploadLimit(version) ? { 'Upload-Limit': limit } : {}),
      });
    };
    const durableProgress = progressInterims(request, version, 0, () => creation.length);
    const { response, context } = await tusPath({ ...request, beforeStore, completeWithArrival, ...(durableProgress ? { durableProgress } : {}) });
    if (response.status !== 201) return reshape(response, version);
    const offset = Number(response.headers.get('Upload-Offset') ?? 0);
    const length = creation.length ?? declaredOnArrival(response);
    const extra = { 'Upload-Offset': String(offset), ...(length !== null ? { 'Upload-Length': String(length) } : {}) };
    if (length !== null && offset === length) {
      return completed(response, version, context, context?.createdUploadId, extra);
    }
    return reshape(response, version, { ...extra, ...completionHeader(version, false) });
  }

  async function offsetRetrieval<R extends IetfRequest>(request: R, version: InteropVersion, tusPath: TusPath<R>): Promise<Response> {
    setRequestHeader(request.req, 'tus-resumable', TUS_VERSION);
    const { response } = await tusPath(request);
    if (response.status !== 200) return reshape(response, version);
    const offset = response.headers.get('Upload-Offset') ?? '0';
    const length = response.headers.get('Upload-Length');
    return reshape(
      response,
      version,
      { 'Upload-Offset': offset, ...completionHeader(version, length !== null && length === offset), 'Cache-Control': 'no-store' },
      204,
      null,
    );
  }

  async function append<R extends IetfRequest>(request: R, version: InteropVersion, tusPath: TusPath<R>): Promise<Response> {
    const { req } = request;
    const parsed = parseAppend(version, req.headers);
    const end = parsed.contentLength === null ? null : parsed.offset + parsed.contentLength;
    // The length this append indicates: Upload-Length, or where a completing append ends.
    const indicated = parsed.uploadLength ?? (parsed.complete ? end : null);
    setRequestHeader(req, 'tus-resumable', TUS_VERSION);
    setRequestHeader(req, 'content-type', OCTET_STREAM);
    // For an upload of unknown length this declares it (the lifecycle reserves it); for one whose
    // length is known the preflight takes it away again, as tus refuses a second declaration.
    if (indicated !== null) setRequestHeader(req, 'upload-length', String(indicated));
    else removeRequestHeader(req, 'upload-length');
    let length: number | null = indicated;
    // Completing an upload of unknown length with no length indicated (a chunked body): the
    // length is where the append ends.
    const completeWithArrival = parsed.complete && indicated === null;
    const preflight = (upload: UploadRow): Response | null => {
      if (upload.transport !== 'ietf') {
        return problem(version, new IetfProblem(409, null, 'this upload was created with tus; continue it with tus', { transport: upload.transport }));
      }
      if (upload.size === null) return null;
      removeRequestHeader(req, 'upload-length');
      length = upload.size;
      if (indicated !== null && indicated !== upload.size) {
        return problem(
          version,
          new IetfProblem(400, PROBLEM_TYPES.inconsistentLength, `inconsistent upload length: the upload is ${upload.size} bytes, this append indicates ${indicated}`),
        );
      }
      return null;
    };
    const durableProgress = progressInterims(request, version, parsed.offset, () => length);
    const { response, context } = await tusPath({ ...request, preflight, completeWithArrival, ...(durableProgress ? { durableProgress } : {}) });
    if (response.status === 204) {
      const offset = Number(response.headers.get('Upload-Offset') ?? parsed.offset);
      length ??= declaredOnArrival(response);
      const extra = { 'Upload-Offset': String(offset), ...(length !== null ? { 'Upload-Length': String(length) } : {}) };
      if (length !== null && offset === length) return completed(response, version, context, context?.uploadId, extra);
      return reshape(response, version, { ...extra, ...completionHeader(version, false) });
    }
    if (response.status === 409) {
      const text = await response.text();
      let code: string | undefined;
      try {
        code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
      } catch {
        code = undefined;
      }
      const stored = response.headers.get('Upload-Offset');
      if (code === 'UPLOAD_COMPLETE') {
        return problem(version, new IetfProblem(400, PROBLEM_TYPES.completedUpload, 'the upload is already complete', {}, { ...completionHeader(version, true), ...(stored ? { 'Upload-Offset': stored } : {}) }));
      }
      const expected = stored === null ? undefined : Number(stored);
      return problem(
        version,
        new IetfProblem(
          409,
          PROBLEM_TYPES.mismatchingOffset,
          'Upload-Offset does not match the offset of the upload',
          { 'expected-offset': expected, 'provided-offset': parsed.offset },
          { ...(stored ? { 'Upload-Offset': stored } : {}), ...completionHeader(version, false) },
        ),
      );
    }
    return reshape(response, version);
  }

  return {
    async handle(request, version, tusPath) {
      const method = (request.req.method ?? '').toUpperCase();
      const response = await serve(request, version, tusPath, method);
      ietfRequests.inc({ interop_version: String(version), method, status: String(response.status) });
      return response;
    },
  };

  async function serve<R extends IetfRequest>(request: R, version: InteropVersion, tusPath: TusPath<R>, method: string): Promise<Response> {
    const { req } = request;
    try {
      if (req.headers['x-http-method-override'] !== undefined) {
        throw new IetfProblem(400, null, 'X-HTTP-Method-Override is a tus mechanism; resumable upload draft requests use their own method');
      }
      switch (method) {
        case 'POST':
          return await create(request, version, tusPath);
        case 'HEAD':
          return await offsetRetrieval(request, version, tusPath);
        case 'PATCH':
          return await append(request, version, tusPath);
        case 'OPTIONS':
          // Upload-Limit on OPTIONS whatever the version (the draft says MUST).
          return reshape((await tusPath(request)).response, version, common(version, true));
        default:
          setRequestHeader(req, 'tus-resumable', TUS_VERSION);
          return reshape((await tusPath(request)).response, version);
      }
    } catch (error) {
      if (error instanceof IetfProblem) return problem(version, error);
      throw error;
    }
  }
}
