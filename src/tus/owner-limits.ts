// How many upload requests (PATCH, and POST with a body) one owner may have in flight in this
// process. Each such request holds a socket, a store write and (PATCH) a lock connection for as
// long as its body lasts; without a bound one owner's slow bodies use up what every other owner's
// uploads need. Beyond the bound a request is refused before its body is read: 429
// TOO_MANY_UPLOADS with Retry-After (and Connection: close, since the body stays unread).
import { AppError } from '../errors.js';

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
