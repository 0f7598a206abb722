// The @tus/server instance behind the upload endpoint: our store, the cross-process locker and the
// lifecycle's create and finish hooks. It acts only on what the endpoint decided (the request
// context): the upload id, its body limit, the owner whose lock share it uses.
import { MemoryLocker, Server } from '@tus/server';
import type { Locker } from '@tus/utils';
import type { Config } from '../config/index.js';
import type { ObjectStorage } from '../storage/types.js';
import type { UploadLifecycle } from './lifecycle.js';
import { useNodeBodies } from './body.js';
import { isOwnerAware } from './pg-locker.js';
import { requestContextOf } from './request-context.js';

export interface TusServerDeps {
  config: Config;
  /** A directory of this process for checksummed bodies awaiting verification. */
  spoolDirectory: string;
  storage: ObjectStorage;
  locker: Locker;
  lifecycle: Pick<UploadLifecycle, 'onUploadCreate' | 'onUploadFinish'>;
  /** Maps an error thrown during a tus request to the response body and status (src/http). */
  mapError: (error: unknown) => { status_code: number; body: string; headers: Record<string, string> };
}

export function createTusServer({ config, spoolDirectory, storage, locker, lifecycle, mapError }: TusServerDeps): Server {
  // A tus creation (POST) locks an id it has just drawn at random that no other request can know
  // yet: an in-process lock is enough there, and it saves a database session per creation. A
  // draft creation announces its id (104) before its body ends, so it locks like any request.
  const creationLocker = new MemoryLocker();
  const server = new Server({
    path: config.tusPath,
    datastore: storage.tusStore,
    // The locker learns whose request it is, so one owner cannot take every lock connection.
    locker: (req) => (req.method === 'POST' && !req.headers.has('upload-draft-interop-version') ? creationLocker : isOwnerAware(locker) ? locker.forOwner(requestContextOf(req).principal.ownerId) : locker),
    maxSize: (req) => requestContextOf(req).maxSize ?? config.maxUploadSize,
    // How often a PATCH in progress reports its offset (live progress over SSE).
    postReceiveInterval: 500,
    // Location is built from PUBLIC_URL or what Fastify derived from the request (which honours
    // X-Forwarded-* only when TRUST_PROXY says the proxy is trusted).
    generateUrl: (req, { path, id }) => `${requestContextOf(req).baseUrl}${path}/${id}`,
    // Never the URL: the id the endpoint authorised (src/tus/target.ts decided it, once).
    getFileIdFromRequest: (req) => requestContextOf(req).uploadId,
    onUploadCreate: lifecycle.onUploadCreate,
    onUploadFinish: lifecycle.onUploadFinish,
    onResponseError: (req, error) => {
      // @tus/server takes status and body only: the headers the client needs to act on the error
      // (Retry-After, Connection: close) travel with the request to the endpoint.
      const { headers, ...mapped } = mapError(error);
      requestContextOf(req).errorHeaders = headers;
      return mapped;
    },
  });
  // Bodies go from the Node request to the store directly, and checksummed ones are verified.
  // A body slower than UPLOAD_MIN_RATE is ended, keeping what arrived. Before any listener is added.
  useNodeBodies(server, { spoolDirectory, minRate: config.uploadMinRate });
  return server;
}
