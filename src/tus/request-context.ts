// Carries what the HTTP layer learnt about a request (who is asking, the public base URL) to the
// tus hooks, which only receive the Web Request that @tus/server builds from the Node request.
import type { IncomingMessage } from 'node:http';
import type { Principal } from '../auth/principal.js';
import type { Logger } from '../logger.js';

export interface RequestContext {
  principal: Principal;
  log: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
  /** Scheme and host the client used (or PUBLIC_URL), for absolute Location URLs. */
  baseUrl: string;
  /** The upload being created comes over the IETF draft, with this interop version. */
  interopVersion?: number;
  /** The upload being created is a partial upload (tus concatenation). */
  partial?: boolean;
  /**
   * The upload this request was authorised for (HEAD, PATCH, DELETE): the only id @tus/server
   * acts on (its getFileIdFromRequest).
   */
  uploadId?: string;
  /** Where the bytes of an upload of unknown length must end (what its owner's quota reserved). */
  maxSize?: number;
  /** Headers of the error @tus/server answered with (Retry-After, Connection: close). */
  errorHeaders?: Record<string, string>;
  /** Set by onUploadCreate: the id of the upload record this request created. */
  createdUploadId?: string;
}

const contexts = new WeakMap<IncomingMessage, RequestContext>();

export function setRequestContext(req: IncomingMessage, context: RequestContext): void {
  contexts.set(req, context);
}

export function getRequestContext(req: IncomingMessage): RequestContext | undefined {
  return contexts.get(req);
}

/** The context of a request as @tus/server hands it to hooks (srvx keeps the Node request). */
export function requestContextOf(req: Request): RequestContext {
  const node = (req as Request & { runtime?: { node?: { req?: IncomingMessage } } }).runtime?.node?.req;
  const context = node ? contexts.get(node) : undefined;
  if (!context) throw new Error('tus request without a request context: it did not come through the HTTP layer');
  return context;
}

/**
 * Owners of the uploads receiving bytes in this process right now. @tus/server reports progress
 * with the upload but not the request, and progress events are routed by owner.
 */
const receiving = new Map<string, { ownerId: string; requests: number }>();

export function trackReceiving(uploadId: string, ownerId: string): () => void {
  const entry = receiving.get(uploadId) ?? { ownerId, requests: 0 };
  entry.requests++;
  receiving.set(uploadId, entry);
  return () => {
    if (--entry.requests === 0) receiving.delete(uploadId);
  };
}

export function ownerOfReceiving(uploadId: string): string | undefined {
  return receiving.get(uploadId)?.ownerId;
}
