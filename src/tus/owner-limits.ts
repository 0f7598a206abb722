// How many upload requests (PATCH, and POST with a body) one owner may have in flight in this
// process. Each such request holds a socket, a store write and (PATCH) a lock connection for as
// long as its body lasts; without a bound one owner's slow bodies use up what every other owner's
// uploads need. Beyond the bound a request is refused before its body is read: 429
// TOO_MANY_UPLOADS with Retry-After (and Connection: close, since the body stays unread).
import type { IncomingMessage } from 'node:http';
import { AppError } from '../errors.js';
import { getRequestContext } from './request-context.js';

/** Seconds a refused client is asked to wait: upload requests of a fair client end within that. */
const RETRY_AFTER_SECONDS = 5;

export class OwnerUploadLimits {
  private readonly active = new Map<string, number>();

  /** `maxPerOwner` 0 = no bound. */
  constructor(readonly maxPerOwner: number) {}

  /** Upload requests of `ownerId` in flight now. */
  count(ownerId: string): number {
    return this.active.get(ownerId) ?? 0;
  }

  /** Takes a slot for `ownerId`, or throws 429 TOO_MANY_UPLOADS. The result releases it (once). */
  acquire(ownerId: string): () => void {
    const count = this.count(ownerId);
    if (this.maxPerOwner > 0 && count >= this.maxPerOwner) {
      throw new AppError(
        429,
        'TOO_MANY_UPLOADS',
        `at most ${this.maxPerOwner} upload requests of one owner may be in progress at a time; retry when one has finished`,
        { limit: this.maxPerOwner },
        { 'Retry-After': String(RETRY_AFTER_SECONDS), Connection: 'close' },
      );
    }
    this.active.set(ownerId, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.count(ownerId) - 1;
      if (left > 0) this.active.set(ownerId, left);
      else this.active.delete(ownerId);
    };
  }
}

/** One set of limits per tus server (tests run several servers in one process). */
const limitsOf = new WeakMap<object, OwnerUploadLimits>();

export function setOwnerUploadLimits(server: object, limits: OwnerUploadLimits): void {
  limitsOf.set(server, limits);
}

/** Whether a request carries an upload body: PATCH, or a POST with content (creation-with-upload). */
function isUploadRequest(req: IncomingMessage): boolean {
  if (req.method === 'PATCH') return true;
  if (req.method !== 'POST') return false;
  const length = Number(req.headers['content-length'] ?? 0);
  return length > 0 || req.headers['transfer-encoding'] !== undefined;
}

/**
 * For the tus route, after authentication (the request context names the owner) and before the
 * request goes to @tus/server: takes a slot of the owner's upload requests, or throws 429. Returns
 * the release (call it once the request is done), or null when the request is not an upload.
 */
export function acquireUploadSlot(server: object, req: IncomingMessage): (() => void) | null {
  const limits = limitsOf.get(server);
  const ownerId = getRequestContext(req)?.principal.ownerId;
  if (!limits || ownerId === undefined || !isUploadRequest(req)) return null;
  return limits.acquire(ownerId);
}
