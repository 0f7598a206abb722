// The upload endpoint: the one owner of the tus 1.0.0 wire protocol. In order, for every request:
//  1. what it is — method and upload id, decided once from the raw request line (target.ts);
//  2. OPTIONS is answered here; the headers are checked (protocol.ts); the caller is authenticated;
//  3. what it may do — the upload lifecycle (hooks/) decides ownership, status and quota for the
//     exact id, and answers from the record where @tus/server has nothing to add (finished
//     uploads, final uploads of a concatenation); `Upload-Concat: final` is created here;
//  4. one owner's upload requests in flight are bounded (owner-limits.ts);
//  5. @tus/server moves the bytes, acting on the authorised id only (getFileIdFromRequest);
//  6. the response is shaped: JSON errors, the tus headers, Retry-After, 423 for a HEAD that
//     cannot be answered for now; metrics; the bookkeeping after the bytes are safe (finishing
//     on HEAD, expiry, the reservation of an upload of unknown length).
// The HTTP layer hosts it (src/http/routes/tus.ts) and adds what is HTTP's: CORS, request ids.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Server as TusServer } from '@tus/server';
import type { Authenticator } from '../auth/authenticator.js';
import type { Config } from '../config/index.js';
import { isPartial } from '../db/concat.js';
import type { UploadRow } from '../db/schema.js';
import { AppError, codeForStatus } from '../errors.js';
import type { Logger } from '../logger.js';
import { removeUnreferenced } from '../storage/remove-unreferenced.js';
import { tusBytesReceived, tusErrors, tusRequests, tusUploadsCreated, tusUploadsTerminated } from '../metrics.js';
import type { ObjectStorage } from '../storage/types.js';
import type { UploadLifecycle } from './lifecycle.js';
import { OwnerUploadLimits } from './owner-limits.js';
import { CHECKSUM_ALGORITHMS, hasBody, parseConcat, TUS_EXTENSIONS, TUS_VERSION, validateTusRequest } from './protocol.js';
import type { BodyHooks } from './body.js';
import { trackReceiving, TusRequest, type RequestContext } from './request-context.js';
import { removeRequestHeader } from './request-headers.js';
import { parseTusRequestLine } from './target.js';
import { createIetfHandler, tusMayContinue, type TusAnswer } from './ietf/handler.js';
import { interopVersionOf } from './ietf/headers.js';

/** Request headers browsers may send (the CORS preflight's answer). */
const ALLOWED_HEADERS = [
  'Authorization',
  'Content-Type',
  'Tus-Resumable',
  'Upload-Length',
  'Upload-Defer-Length',
  'Upload-Offset',
  'Upload-Metadata',
  'Upload-Concat',
  'Upload-Checksum',
  'X-HTTP-Method-Override',
  'X-Requested-With',
  'X-Request-ID',
  // The IETF resumable upload draft (src/tus/ietf/).
  'Upload-Draft-Interop-Version',
  'Upload-Complete',
  'Upload-Incomplete',
  'Content-Disposition',
];

/** Response headers browsers may read. */
const EXPOSED_HEADERS = [
  'Location',
  'Upload-Offset',
  'Upload-Length',
  'Upload-Metadata',
  'Upload-Defer-Length',
  'Upload-Concat',
  'Upload-Expires',
  'Tus-Version',
  'Tus-Resumable',
  'Tus-Max-Size',
  'Tus-Extension',
  'Tus-Checksum-Algorithm',
  'X-Request-ID',
  'Retry-After',
];

/** Headers every tus response carries, ours and @tus/server's alike. */
const TUS_HEADERS: Record<string, string> = {
  'Tus-Resumable': TUS_VERSION,
  'Access-Control-Expose-Headers': EXPOSED_HEADERS.join(', '),
};

export interface MappedError {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

export interface TusEndpointDeps {
  config: Config;
  tus: TusServer;
  lifecycle: UploadLifecycle;
  authenticator: Authenticator;
  storage: ObjectStorage;
  /** Live progress of uploads receiving bytes (SSE). */
  publishProgress(uploadId: string, ownerId: string, offset: number, length: number | null): void;
  /** Errors become status, JSON body and headers in one place (src/http/errors.ts). */
  mapError(error: unknown): MappedError;
  /** The file record (GET /api/files/:id) an IETF-draft completing request answers with. */
  fileRecord?(uploadId: string, ownerId: string): Promise<unknown>;
}

export interface EndpointRequest {
  req: IncomingMessage;
  res: ServerResponse;
  /** The request's logger; with setBindings (pino), its lines say the protocol. */
  log: RequestContext['log'] & { setBindings?(bindings: Record<string, unknown>): void };
  /** Scheme and host the client used (or PUBLIC_URL), for absolute Location URLs. */
  baseUrl: string;
  /** The IETF draft's step once the upload is known, before a byte moves: a Response ends the request. */
  preflight?: (upload: UploadRow) => Response | null;
  /** Runs once the upload exists, before a byte of the body is stored (the draft's 104). */
  beforeStore?: (uploadId: string) => void;
  /** The durable offset while the body is stored (the draft's progress 104s). */
  durableProgress?: (offset: number) => void;
  /**
   * The request completes an upload of unknown length with what its body brings (the draft's
   * `Upload-Complete: ?1` with no length, e.g. a chunked body): once the body arrived whole, its
   * length is declared as the offset reached and the upload finished. The answer then carries
   * `Upload-Length`.
   */
  completeWithArrival?: boolean;
}

export interface TusEndpoint {
  /** Serves one request to TUS_PATH; the caller sends the Response (and adds CORS). */
  handle(request: EndpointRequest): Promise<Response>;
}

/**
 * tus-js-client (and so Uppy) takes any failed HEAD but 423 to mean "this upload is gone" and
 * starts again from byte 0 (tus/tus-js-client#579, #895). A HEAD the server cannot answer for now
 * (database or storage unavailable: 503) is answered 423 with Retry-After, which those clients
 * retry, so they resume where they were once the outage is over.
 */
function headStatus(method: string, status: number): number {
  return method === 'HEAD' && status === 503 ? 423 : status;
}


function answer(status: number, headers: Record<string, string> = {}, body: string | null = null): Response {
  return new Response(body, { status, headers: { ...TUS_HEADERS, ...(body === null ? {} : { 'Content-Type': 'application/json; charset=utf-8' }), ...headers } });
}

/** @tus/server answers some errors with plain text; clients get JSON everywhere. */
async function jsonErrorBody(response: Response): Promise<Response> {
  if (response.status < 400 || response.headers.get('content-type')?.includes('application/json')) return response;
  const text = (await response.text()).trim();
  let body: string;
  try {
    body = JSON.stringify(JSON.parse(text) as unknown);
  } catch {
    body = JSON.stringify({ error: { code: codeForStatus(response.status), message: text || 'request failed' } });
  }
  const headers = new Headers(response.headers);
  headers.set('Content-Type', 'application/json; charset=utf-8');
  headers.set('Content-Length', String(Buffer.byteLength(body)));
  return new Response(body, { status: response.status, headers });
}

function countRequest(method: string, req: IncomingMessage, response: Response): void {
  tusRequests.inc({ method });
  if (response.status >= 400) {
    tusErrors.inc({ method, status: String(response.status) });
    return;
  }
  if (method === 'POST' && response.status === 201) tusUploadsCreated.inc();
  if (method === 'DELETE' && response.status === 204) tusUploadsTerminated.inc();
  const offset = response.headers.get('Upload-Offset');
  if (offset !== null && (method === 'PATCH' || method === 'POST')) {
    const received = Number(offset) - (method === 'PATCH' ? Number(req.headers['upload-offset'] ?? 0) : 0);
    if (received > 0) tusBytesReceived.inc(received);
  }
}

/** Whether a request carries an upload body: PATCH, or a POST with content (creation-with-upload). */
function carriesBody(method: string, req: IncomingMessage): boolean {
  return method === 'PATCH' || (method === 'POST' && hasBody(req.headers));
}

/** What was decided before @tus/server is asked: the upload acted on, if any, and the context it acts in. */
interface Handover {
  method: string;
  upload: UploadRow | undefined;
  partial: boolean;
  ownerId: string;
  context: RequestContext;
}

export function createTusEndpoint(deps: TusEndpointDeps): TusEndpoint {
  const { config, tus, lifecycle, authenticator, storage } = deps;
  const limits = new OwnerUploadLimits(config.ownerMaxConcurrentUploads);
  // The IETF draft (src/tus/ietf/): its requests are rewritten into tus requests served by
  // `serveTus` below, and their answers rewritten back; a creation announces itself with a 104.
  const ietf = createIetfHandler({ config, ...(deps.fileRecord ? { fileRecord: deps.fileRecord } : {}) });

  function errorResponse(method: string, error: unknown, log: EndpointRequest['log']): Response {
    const mapped = deps.mapError(error);
    if (mapped.status >= 500) log.error({ err: error }, 'tus request failed');
    const status = headStatus(method, mapped.status);
    tusRequests.inc({ method });
    tusErrors.inc({ method, status: String(status) });
    return answer(status, mapped.headers, JSON.stringify(mapped.body));
  }

  function options(): Response {
    return answer(204, {
      'Tus-Version': TUS_VERSION,
      'Tus-Extension': TUS_EXTENSIONS.join(','),
      'Tus-Max-Size': String(config.maxUploadSize),
      'Tus-Checksum-Algorithm': Object.keys(CHECKSUM_ALGORITHMS).join(','),
      'Access-Control-Allow-Methods': 'POST, HEAD, PATCH, DELETE, OPTIONS',
      'Access-Control-Allow-Headers': ALLOWED_HEADERS.join(', '),
      'Access-Control-Max-Age': '86400',
    });
  }

  /** Steps 1–3: a Response when the endpoint answers itself, else what @tus/server is to do. */
  async function decide({ req, log, baseUrl, completeWithArrival }: EndpointRequest): Promise<Response | Handover> {
    const line = parseTusRequestLine(req.method ?? '', req.url ?? '', req.headers['x-http-method-override'], config.tusPath);
    const { method } = line;
    req.method = method;
    removeRequestHeader(req, 'x-http-method-override');
    if (method === 'OPTIONS') return options();
    const invalid = validateTusRequest(method, req.headers, { maxUploadSize: config.maxUploadSize });
    if (invalid) throw invalid;
    const principal = await authenticator.authenticate({ authorization: req.headers.authorization });
    const context: RequestContext = { principal, log, baseUrl };

    if (line.target.kind === 'collection') {
      const concatHeader = req.headers['upload-concat'];
      let partial = false;
      if (typeof concatHeader === 'string') {
        const concat = parseConcat(concatHeader);
        if (concat.type === 'final') {
          const metadata = req.headers['upload-metadata'];
          const created = await lifecycle.createFinal({
            principal,
            concat: concatHeader,
            urls: concat.urls,
            metadata: typeof metadata === 'string' ? metadata : null,
          });
          tusRequests.inc({ method });
          tusUploadsCreated.inc();
          return answer(201, { Location: `${baseUrl}${config.tusPath}/${created.id}`, 'Upload-Expires': created.expiresAt.toUTCString() });
        }
        // @tus/server refuses Upload-Concat: it creates the partial as a plain upload, which our
        // records mark as partial.
        partial = true;
        removeRequestHeader(req, 'upload-concat');
      }
      // creation-with-upload of unknown length reserves its Content-Length; a chunked body could
      // not be, unless it completes the upload (it then reserves what the quota has room for).
      if (req.headers['upload-defer-length'] !== undefined && req.headers['transfer-encoding'] !== undefined && !completeWithArrival) {
        throw new AppError(411, 'LENGTH_REQUIRED', 'a creation of unknown length that carries bytes needs Content-Length');
      }
      const interopVersion = interopVersionOf(req.headers) ?? undefined;
      return {
        method,
        upload: undefined,
        partial,
        ownerId: principal.ownerId,
        context: { ...context, partial, ...(interopVersion === undefined ? {} : { interopVersion }) },
      };
    }

    const decision = await lifecycle.incoming({
      method,
      uploadId: line.target.id,
      principal,
      uploadLength: typeof req.headers['upload-length'] === 'string' ? req.headers['upload-length'] : null,
      uploadOffset: Number(req.headers['upload-offset'] ?? 0),
      contentLength: req.headers['content-length'] === undefined ? null : Number(req.headers['content-length']),
    });
    if (decision.action === 'respond') {
      await removeUnreferenced(storage, decision.removeObjects ?? [], log);
      tusRequests.inc({ method });
      if (method === 'DELETE' && decision.status === 204) tusUploadsTerminated.inc();
      return answer(decision.status, decision.headers);
    }
    const { upload } = decision;
    const partial = isPartial(upload);
    // The authorised id, and only it, is what @tus/server acts on.
    return { method, upload, partial, ownerId: principal.ownerId, context: { ...context, partial, uploadId: upload.id, maxSize: decision.maxEnd } };
  }

  /** Step 6, after the bytes are safe: must not turn a success into a failure (the reconciler repairs). */
  async function afterwards(handover: Handover, req: IncomingMessage, response: Response): Promise<void> {
    const { method, upload, partial } = handover;
    // 409 on PATCH: tell the client where the upload really is, so it can resume without a HEAD.
    if (response.status === 409 && method === 'PATCH' && upload) {
      const stored = await storage.tusStore.getUpload(upload.id).catch(() => null);
      if (stored) response.headers.set('Upload-Offset', String(stored.offset));
      return;
    }
    if (response.status >= 300) return;
    const offset = Number(response.headers.get('Upload-Offset') ?? 0);
    // Upload-Expires (POST, PATCH and HEAD of unfinished uploads) says what the record says: the
    // tus stores run without an expiry of their own, the database is the one clock.
    const expiry = (at: Date | null) => {
      if (at) response.headers.set('Upload-Expires', at.toUTCString());
    };
    if (method === 'POST') {
      const declared = req.headers['upload-length'];
      if (declared === undefined || Number(declared) !== offset || partial) expiry(new Date(Date.now() + config.uploadExpiryMs));
      return;
    }
    if (!upload) return;
    if (partial && method === 'HEAD') response.headers.set('Upload-Concat', 'partial');
    const length = response.headers.get('Upload-Length') ?? (upload.size === null ? null : String(upload.size));
    const complete = length !== null && Number(length) === offset;
    if (method === 'HEAD') {
      // Every byte stored while the record says `uploading`: the finish never ran (crash, database
      // outage): finish it now instead of waiting for the reconciler.
      if (complete) await lifecycle.finish(upload.id, offset, partial);
      if (!complete || partial) expiry(upload.expiresAt);
    } else if (method === 'PATCH') {
      deps.publishProgress(upload.id, upload.ownerId, offset, length === null ? null : Number(length));
      if (complete && !partial) return;
      const wanted = Date.now() + config.uploadExpiryMs;
      // Moving the expiry costs a write and a commit, and a fast client sends several PATCHes a
      // second: the record moves only when that gains a tenth of UPLOAD_EXPIRY (at most a minute).
      if (upload.expiresAt !== null && wanted - upload.expiresAt.getTime() < Math.min(60_000, config.uploadExpiryMs / 10)) {
        expiry(upload.expiresAt);
        return;
      }
      const expiresAt = new Date(wanted);
      await lifecycle.touch(upload.id, expiresAt);
      expiry(expiresAt);
    }
  }

  /**
   * The body hooks of a request that completes an upload of unknown length with what arrives,
   * decided by the lifecycle as a PATCH of that upload would be: a creation reserves what the
   * quota has room for before its body (a PATCH did so in `decide`), and the length is declared
   * (type policy and quota for that size) under the upload lock once the body is stored.
   */
  function completionOnArrival({ context }: Handover): { hooks: Pick<BodyHooks, 'maxEnd' | 'completeAt'>; completedAt(): number | null } {
    const { principal } = context;
    let completedAt: number | null = null;
    const ask = async (uploadId: string, uploadLength: string | null, uploadOffset: number) => {
      const decision = await lifecycle.incoming({ method: 'PATCH', uploadId, principal, uploadLength, uploadOffset, contentLength: uploadLength === null ? null : 0 });
      return decision.action === 'continue' ? (decision.maxEnd ?? config.maxUploadSize) : 0;
    };
    return {
      hooks: {
        ...(context.uploadId === undefined ? { maxEnd: (uploadId: string) => ask(uploadId, null, 0) } : {}),
        completeAt: async (uploadId, offset) => {
          await ask(uploadId, String(offset), offset);
          await storage.tusStore.declareUploadLength(uploadId, offset);
          // An empty write at the length lets the store do what a write reaching it does (S3: the
          // trailing bytes become the last part and the multipart upload is completed).
          await storage.tusStore.write(Readable.from([]), uploadId, offset);
          completedAt = offset;
        },
      },
      completedAt: () => completedAt,
    };
  }

  async function handle(request: EndpointRequest): Promise<Response> {
    // Upload-Draft-Interop-Version with a version we speak: the IETF draft; anything else is tus.
    const version = interopVersionOf(request.req.headers);
    // Every later line of this request (Fastify's "request completed" too) says the protocol.
    request.log.setBindings?.(version === null ? { protocol: 'tus' } : { protocol: 'ietf-draft', interopVersion: version });
    return version === null ? (await serveTus(request)).response : ietf.handle(request, version, serveTus);
  }

  async function serveTus(request: EndpointRequest): Promise<TusAnswer> {
    const { req, res, log } = request;
    let handover: Handover;
    let release: (() => void) | null = null;
    try {
      const decided = await decide(request);
      if (decided instanceof Response) return { response: decided, context: null };
      handover = decided;
      // A draft request may end here once its upload is known (e.g. an inconsistent length); an
      // upload created over the draft is not continued with tus.
      const early = handover.upload ? (request.preflight?.(handover.upload) ?? null) : null;
      if (early) return { response: early, context: handover.context };
      if (handover.upload && interopVersionOf(req.headers) === null) {
        const refused = tusMayContinue(handover.method, handover.upload);
        if (refused) throw refused;
      }
      // Step 4: refused before its body is read (429 TOO_MANY_UPLOADS with Retry-After).
      if (carriesBody(handover.method, req)) release = limits.acquire(handover.ownerId);
    } catch (error) {
      return { response: errorResponse(req.method ?? 'POST', error, log), context: null };
    }

    const { method, upload, partial, context } = handover;
    const untrack = upload && method === 'PATCH' ? trackReceiving(upload.id, upload.ownerId) : null;
    const arrival = request.completeWithArrival && (method === 'POST' ? !upload : upload?.size === null) ? completionOnArrival(handover) : null;
    let response: Response;
    try {
      const hooks = { beforeStore: request.beforeStore, durableProgress: request.durableProgress, ...arrival?.hooks };
      response = await jsonErrorBody(await tus.handleWeb(new TusRequest({ req, res }, context, hooks)));
    } catch (error) {
      log.error({ err: error }, 'tus handler crashed');
      const mapped = deps.mapError(error);
      response = answer(mapped.status, mapped.headers, JSON.stringify(mapped.body));
    } finally {
      untrack?.();
      release?.();
    }
    for (const [name, value] of Object.entries({ ...TUS_HEADERS, ...context.errorHeaders })) response.headers.set(name, value);
    const arrived = arrival?.completedAt() ?? null;
    if (arrived !== null && response.status < 300) {
      response.headers.set('Upload-Length', String(arrived));
      // @tus/server finishes a PATCH whose offset reached the length; a creation it does not
      // (it compares with the Upload-Length header), so it is finished here.
      if (method === 'POST' && context.createdUploadId) {
        await lifecycle.finish(context.createdUploadId, arrived, partial).catch((error: unknown) => log.warn({ err: error, uploadId: context.createdUploadId }, 'could not finish the upload; the reconciler will'));
      }
    }

    if (method === 'POST' && response.status >= 500 && context.createdUploadId) {
      const created = context.createdUploadId;
      await lifecycle
        .discardFailedCreation(created)
        .then((keys) => removeUnreferenced(storage, keys, log))
        .catch((error: unknown) => log.warn({ err: error, uploadId: created }, 'could not remove the record of a failed creation'));
    }
    // Errors mapped inside @tus/server (hooks, store) keep only status and body: a 503 still says
    // when to retry, like every other 503 of ours.
    if (response.status === 503 && !response.headers.has('Retry-After')) response.headers.set('Retry-After', '5');
    if (headStatus(method, response.status) !== response.status) {
      response = new Response(null, { status: headStatus(method, response.status), headers: response.headers });
    }
    countRequest(method, req, response);
    // An upload of unknown length holds what is stored of it, no more.
    if (method === 'PATCH' && upload && upload.size === null && req.headers['upload-length'] === undefined) {
      const header = response.status === 204 ? response.headers.get('Upload-Offset') : null;
      await Promise.resolve(header !== null ? Number(header) : storage.tusStore.getUpload(upload.id).then((stored) => stored.offset))
        .then((offset) => lifecycle.settleArrivedBytes(upload.id, offset))
        .catch((error: unknown) => log.warn({ err: error, uploadId: upload.id }, 'could not settle the reservation of an upload of unknown length'));
    }
    try {
      await afterwards(handover, req, response);
    } catch (error) {
      log.warn({ err: error, uploadId: upload?.id }, 'post-request bookkeeping failed');
    }
    return { response, context };
  }

  return { handle };
}
