// The tus endpoint, hosted on Fastify the documented way: no body parsing (the raw request stream
// goes to @tus/server untouched) and the raw req/res handed over. Before @tus/server sees a
// request this plugin authenticates it and applies onIncomingRequest (ownership, record status);
// afterwards it makes every error a JSON body and adds what @tus/server leaves out.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Server as TusServer } from '@tus/server';
import { NodeRequest, sendNodeResponse } from 'srvx/node';
import type { Authenticator } from '../../auth/authenticator.js';
import type { Config } from '../../config/index.js';
import type { UploadEvents } from '../../events/upload-events.js';
import { touchUpload } from '../../db/uploads.js';
import type { UploadRow } from '../../db/schema.js';
import type { ObjectStorage } from '../../storage/types.js';
import type { HookDeps } from '../../../hooks/deps.js';
import { onIncomingRequest, settleArrivedBytes } from '../../../hooks/on-incoming-request.js';
import { finishUpload } from '../../../hooks/on-upload-finish.js';
import { getRequestContext, setRequestContext, trackReceiving } from '../../tus/request-context.js';
import { acquireUploadSlot } from '../../tus/owner-limits.js';
import { AUDIT } from '../../db/audit.js';
import { removeFile } from '../../db/files.js';
import { TUS_EXPOSED_HEADERS } from '../../tus/server.js';
import { codeForStatus, toHttpError } from '../errors.js';
import { AppError } from '../../errors.js';
import { applyCorsDecision, corsAllowOrigin } from '../origin-policy.js';
import { isPartial } from '../../db/concat.js';
import { CHECKSUM_ALGORITHMS, parseConcat, TUS_EXTENSIONS, TUS_VERSION, validateTusRequest } from '../../tus/protocol.js';
import { parseTusRequestLine, TUS_METHODS } from '../../tus/target.js';
import { createFinal } from '../../../hooks/on-concat-final.js';
import { tusBytesReceived, tusErrors, tusRequests, tusUploadsCreated, tusUploadsTerminated } from '../../metrics.js';

export interface TusRoutesOptions {
  config: Config;
  tus: TusServer;
  hooks: HookDeps;
  authenticator: Authenticator;
  events: UploadEvents;
  storage: ObjectStorage;
}

/** Drops a request header before @tus/server sees it (srvx reads rawHeaders). */
function removeRequestHeader(req: FastifyRequest['raw'], name: string): void {
  delete req.headers[name];
  const raw = req.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) {
    if (raw[i]!.toLowerCase() === name) raw.splice(i, 2);
  }
}

function baseUrlOf(config: Config, request: FastifyRequest): string {
  return config.publicUrl ?? `${request.protocol}://${request.host}`;
}

/** Headers every tus response carries, also the ones we answer ourselves. */
function tusHeaders(request: FastifyRequest): Record<string, string> {
  // Which origin may read this answer is the origin policy's decision (src/http/origin-policy.ts).
  const allowOrigin = corsAllowOrigin(request);
  return {
    'Tus-Resumable': TUS_VERSION,
    ...(allowOrigin === null ? {} : { 'Access-Control-Allow-Origin': allowOrigin }),
    'Access-Control-Expose-Headers': [
      'Location',
      'Upload-Offset',
      'Upload-Length',
      'Upload-Metadata',
      'Upload-Defer-Length',
      'Upload-Concat',
      'Tus-Version',
      'Tus-Resumable',
      'Tus-Max-Size',
      'Tus-Extension',
      ...TUS_EXPOSED_HEADERS,
    ].join(', '),
    Vary: 'Origin',
  };
}

/**
 * tus-js-client (and so Uppy, up to 4.3 at least) takes any failed HEAD but 423 to mean "this upload
 * is gone" and starts a new upload from byte 0 (tus/tus-js-client#579, #895). A HEAD the server
 * cannot answer for now (database or storage unavailable: 503) is answered 423 with Retry-After
 * instead, which those clients retry, so they resume where they were once the outage is over.
 */
function headStatus(method: string, status: number): number {
  return method === 'HEAD' && status === 503 ? 423 : status;
}

function sendError(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
  const mapped = toHttpError(error);
  const status = headStatus(request.raw.method ?? request.method, mapped.status);
  tusRequests.inc({ method: request.method });
  tusErrors.inc({ method: request.method, status: String(status) });
  if (mapped.status >= 500) request.log.error({ err: error }, 'tus request failed');
  return reply
    .status(status)
    .headers({ ...tusHeaders(request), ...mapped.headers })
    .send(mapped.body);
}

/** @tus/server answers some errors with plain text; clients get JSON everywhere. */
async function jsonErrorBody(response: Response): Promise<Response> {
  if (response.status < 400 || response.headers.get('content-type')?.includes('application/json')) return response;
  const text = (await response.text()).trim();
  let body: string;
  try {
    const parsed = JSON.parse(text) as unknown;
    body = JSON.stringify(parsed);
  } catch {
    body = JSON.stringify({ error: { code: codeForStatus(response.status), message: text || 'request failed' } });
  }
  const headers = new Headers(response.headers);
  headers.set('Content-Type', 'application/json; charset=utf-8');
  headers.set('Content-Length', String(Buffer.byteLength(body)));
  return new Response(body, { status: response.status, headers });
}

function countTusRequest(method: string, request: FastifyRequest, response: Response): void {
  tusRequests.inc({ method });
  if (response.status >= 400) {
    tusErrors.inc({ method, status: String(response.status) });
    return;
  }
  const offset = response.headers.get('Upload-Offset');
  if (method === 'POST' && response.status === 201) tusUploadsCreated.inc();
  if (method === 'DELETE' && response.status === 204) tusUploadsTerminated.inc();
  if (offset !== null && (method === 'PATCH' || method === 'POST')) {
    const from = method === 'PATCH' ? Number(request.headers['upload-offset'] ?? 0) : 0;
    const received = Number(offset) - from;
    if (received > 0) tusBytesReceived.inc(received);
  }
}

export const tusRoutes: FastifyPluginAsync<TusRoutesOptions> = async (app, { config, tus, hooks, authenticator, events, storage }) => {
  // Leave every body alone: @tus/server reads the raw stream itself.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  async function handle(request: FastifyRequest, reply: FastifyReply) {
    let method: string = request.method;
    let upload: UploadRow | undefined;
    let partial = false;
    try {
      // The one place a tus request's method and upload id are decided: nothing below (nor
      // @tus/server, which asks for the id through the request context) reads the URL again.
      const line = parseTusRequestLine(request.raw.method ?? request.method, request.raw.url ?? '', request.headers['x-http-method-override'], config.tusPath);
      method = line.method;
      request.raw.method = method;
      removeRequestHeader(request.raw, 'x-http-method-override');
      const uploadId = line.target.kind === 'upload' ? line.target.id : undefined;
      if (method === 'OPTIONS') return sendOptions(request, reply);
      const invalid = validateTusRequest(method, request.headers, { maxUploadSize: config.maxUploadSize });
      if (invalid) throw invalid;
      const principal = await authenticator.authenticate({ authorization: request.headers.authorization });
      const context = { principal, log: request.log, baseUrl: baseUrlOf(config, request) };

      if (method === 'POST') {
        const concatHeader = request.headers['upload-concat'];
        if (typeof concatHeader === 'string') {
          const concat = parseConcat(concatHeader);
          if (concat.type === 'final') {
            const metadata = request.headers['upload-metadata'];
            const created = await createFinal(hooks, {
              principal,
              concat: concatHeader,
              urls: concat.urls,
              metadata: typeof metadata === 'string' ? metadata : null,
            });
            tusRequests.inc({ method });
            tusUploadsCreated.inc();
            return reply
              .status(201)
              .headers({
                ...tusHeaders(request),
                Location: `${context.baseUrl}${config.tusPath}/${created.id}`,
                'Upload-Expires': created.expiresAt.toUTCString(),
              })
              .send();
          }
          // @tus/server refuses Upload-Concat: it creates the partial as a plain upload, which
          // our records mark as partial.
          partial = true;
          removeRequestHeader(request.raw, 'upload-concat');
        }
        // creation-with-upload of unknown length reserves its Content-Length; a chunked body could not be.
        if (request.headers['upload-defer-length'] !== undefined && request.headers['transfer-encoding'] !== undefined) {
          throw new AppError(411, 'LENGTH_REQUIRED', 'a creation of unknown length that carries bytes needs Content-Length');
        }
        setRequestContext(request.raw, { ...context, partial });
      } else if (uploadId !== undefined) {
        const uploadLength = request.headers['upload-length'];
        const decision = await onIncomingRequest(hooks, {
          method,
          uploadId,
          principal,
          uploadLength: typeof uploadLength === 'string' ? uploadLength : null,
          uploadOffset: Number(request.headers['upload-offset'] ?? 0),
          contentLength: request.headers['content-length'] === undefined ? null : Number(request.headers['content-length']),
        });
        if (decision.action === 'respond') {
          for (const key of decision.removeObjects ?? []) {
            await storage.remove(key).catch((error: unknown) => request.log.warn({ err: error, key }, 'could not remove stored bytes'));
          }
          tusRequests.inc({ method });
          if (method === 'DELETE' && decision.status === 204) tusUploadsTerminated.inc();
          return reply.status(decision.status).headers({ ...tusHeaders(request), ...decision.headers }).send();
        }
        upload = decision.upload;
        partial = isPartial(upload);
        // The authorised id, and only it, is what @tus/server acts on.
        setRequestContext(request.raw, { ...context, partial, uploadId: upload.id, maxSize: decision.maxEnd });
      } else {
        throw new Error(`tus request line without a target for ${method}`);
      }
    } catch (error) {
      return sendError(request, reply, error);
    }

    // OWNER_MAX_CONCURRENT_UPLOADS (src/tus/owner-limits.ts): an owner's PATCH or POST with a body
    // beyond it is refused before its body is read, 429 TOO_MANY_UPLOADS with Retry-After.
    let releaseUploadSlot: (() => void) | null;
    try {
      releaseUploadSlot = acquireUploadSlot(tus, request.raw);
    } catch (error) {
      return sendError(request, reply, error);
    }
    reply.hijack();
    const untrack = upload && method === 'PATCH' ? trackReceiving(upload.id, upload.ownerId) : null;
    let response: Response;
    try {
      response = await jsonErrorBody(await tus.handleWeb(new NodeRequest({ req: request.raw, res: reply.raw })));
    } catch (error) {
      const mapped = toHttpError(error);
      request.log.error({ err: error }, 'tus handler crashed');
      response = new Response(JSON.stringify(mapped.body), {
        status: mapped.status,
        headers: { ...tusHeaders(request), 'Content-Type': 'application/json; charset=utf-8' },
      });
    }

    untrack?.();
    releaseUploadSlot?.();
    for (const [name, value] of Object.entries(getRequestContext(request.raw)?.errorHeaders ?? {})) response.headers.set(name, value);
    applyCorsDecision(request, response.headers);
    // A creation that failed after its record was made (storage down when creating the object,
    // the finish hook failing): the client has no Location and will create again, so this record
    // must not live on holding a reservation (or be finished by the reconciler as a duplicate).
    const created = getRequestContext(request.raw)?.createdUploadId;
    if (method === 'POST' && response.status >= 500 && created) {
      await removeFile(hooks.db, created, { actor: 'server', action: AUDIT.terminated, status: 'deleted', onlyIf: ['uploading', 'processing'] })
        .then((removed) => Promise.all((removed?.objectsToRemove ?? []).map((key) => storage.remove(key).catch(() => {}))))
        .catch((error: unknown) => request.log.warn({ err: error, uploadId: created }, 'could not remove the record of a failed creation'));
    }
    // Errors mapped inside @tus/server (hooks, store) keep only status and body: a 503 still says
    // when to retry, like every other 503 of ours.
    if (response.status === 503 && !response.headers.has('Retry-After')) response.headers.set('Retry-After', '5');
    if (headStatus(method, response.status) !== response.status) {
      response = new Response(null, { status: headStatus(method, response.status), headers: response.headers });
    }
    countTusRequest(method, request, response);
    if (method === 'PATCH' && upload && upload.size === null && request.headers['upload-length'] === undefined) {
      await settleReservation(upload.id, response).catch((error: unknown) =>
        request.log.warn({ err: error, uploadId: upload?.id }, 'could not settle the reservation of an upload of unknown length'),
      );
    }
    try {
      await afterTus(method, request, upload, partial, response);
    } catch (error) {
      // Bookkeeping after the bytes are safe must not turn a success into a failure: the
      // reconciler repairs what this could not do.
      request.log.warn({ err: error, uploadId: upload?.id }, 'post-request bookkeeping failed');
    }
    await sendNodeResponse(reply.raw, response);
  }

  /** An upload of unknown length holds, after a PATCH, what is stored of it. */
  async function settleReservation(uploadId: string, response: Response) {
    const header = response.status === 204 ? response.headers.get('Upload-Offset') : null;
    const offset = header !== null ? Number(header) : (await storage.tusStore.getUpload(uploadId)).offset;
    await settleArrivedBytes(hooks, uploadId, offset);
  }

  /** OPTIONS: what this server supports (also the CORS preflight, which carries no credentials). */
  function sendOptions(request: FastifyRequest, reply: FastifyReply) {
    return reply
      .status(200)
      .headers({
        ...tusHeaders(request),
        'Tus-Version': TUS_VERSION,
        'Tus-Extension': TUS_EXTENSIONS.join(','),
        'Tus-Max-Size': String(config.maxUploadSize),
        'Tus-Checksum-Algorithm': Object.keys(CHECKSUM_ALGORITHMS).join(','),
        'Access-Control-Allow-Methods': 'POST, HEAD, PATCH, DELETE, OPTIONS, GET',
        'Access-Control-Allow-Headers': [
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
        ].join(', '),
        'Access-Control-Max-Age': '86400',
        'Content-Length': '0',
      })
      .send();
  }

  /**
   * - A HEAD that finds every byte stored while the record still says `uploading` means the
   *   finish hook never ran (crash, database outage): finish it now instead of waiting for the
   *   reconciler.
   * - PATCH activity extends an unfinished upload's expiry; Upload-Expires (on POST, PATCH and
   *   HEAD of unfinished uploads) says until when. The tus stores run without their own expiry so
   *   that the database is the one clock.
   */
  async function afterTus(method: string, request: FastifyRequest, upload: UploadRow | undefined, partial: boolean, response: Response) {
    // 409 on PATCH: tell the client where the upload really is, so it can resume without a HEAD.
    if (response.status === 409 && method === 'PATCH' && upload) {
      const stored = await storage.tusStore.getUpload(upload.id).catch(() => null);
      if (stored) response.headers.set('Upload-Offset', String(stored.offset));
      return;
    }
    if (response.status >= 300) return;
    const offset = Number(response.headers.get('Upload-Offset') ?? 0);
    const expiry = (at: Date | null) => {
      if (at) response.headers.set('Upload-Expires', at.toUTCString());
    };
    if (method === 'POST') {
      const declared = request.headers['upload-length'];
      if (declared === undefined || Number(declared) !== offset || partial) expiry(new Date(Date.now() + config.uploadExpiryMs));
      return;
    }
    if (!upload) return;
    if (partial && method === 'HEAD') response.headers.set('Upload-Concat', 'partial');
    const length = response.headers.get('Upload-Length') ?? (upload.size === null ? null : String(upload.size));
    const complete = length !== null && Number(length) === offset;
    if (method === 'HEAD') {
      if (complete) await finishUpload(hooks, upload.id, offset, partial);
      if (!complete || partial) expiry(upload.expiresAt);
    } else if (method === 'PATCH') {
      events.publishProgress(upload.id, upload.ownerId, offset, length === null ? null : Number(length));
      if (complete && !partial) return;
      const wanted = Date.now() + config.uploadExpiryMs;
      // Moving the expiry costs a write and a commit, and a fast client sends several PATCHes a
      // second: the record moves only when that gains at least a tenth of UPLOAD_EXPIRY (at most
      // a minute). Upload-Expires always says what the record says.
      if (upload.expiresAt !== null && wanted - upload.expiresAt.getTime() < Math.min(60_000, config.uploadExpiryMs / 10)) {
        expiry(upload.expiresAt);
        return;
      }
      const expiresAt = new Date(wanted);
      await touchUpload(hooks.db, upload.id, expiresAt);
      expiry(expiresAt);
    }
  }

  // Every path under the endpoint comes here, so that each gets parseTusRequestLine's answer.
  app.route({ method: [...TUS_METHODS], url: '/', handler: handle });
  app.route({ method: [...TUS_METHODS], url: '/*', handler: handle });
};
