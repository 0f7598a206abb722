// Carries what the endpoint learnt about a request (who is asking, the public base URL, the
// authorised upload) to @tus/server's options and the hooks, which receive only the Web Request:
// the request the endpoint hands @tus/server is a TusRequest, which holds it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { NodeRequest } from 'srvx/node';
import type { Principal } from '../auth/principal.js';
import type { Logger } from '../logger.js';
import { NodeBody, type BodyHooks } from './body.js';

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

/**
 * srvx's NodeRequest (the Web Request over a Node request that @tus/server is written for) with
 * the endpoint's context, and a body that src/tus/body.ts stores from the Node request.
 */
export class TusRequest extends NodeRequest {
  readonly #context: RequestContext;
  readonly #req: IncomingMessage;
  readonly #hooks: BodyHooks;
  #body: NodeBody | null | undefined;

  constructor(node: { req: IncomingMessage; res: ServerResponse }, context: RequestContext, hooks: BodyHooks = {}) {
    super(node);
    this.#context = context;
    this.#req = node.req;
    this.#hooks = hooks;
  }

  override get body(): NodeBody | null {
    if (this.#body === undefined) {
      this.#body = this.method === 'GET' || this.method === 'HEAD' ? null : new NodeBody(this, this.#req, this.#hooks);
    }
    return this.#body;
  }

  /** The context of `req` if it is a TusRequest (srvx's NodeRequest answers instanceof for any Request). */
  static contextOf(req: Request): RequestContext | undefined {
    return #context in req ? req.#context : undefined;
  }
}

/** The context of a request as @tus/server hands it to its options and the hooks. */
export function requestContextOf(req: Request): RequestContext {
  const context = TusRequest.contextOf(req);
  if (!context) throw new Error('tus request without a request context: it did not come through the upload endpoint');
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
