// The SHA-256 and MD5 of one upload's bytes as they arrive, wherever they are computed: on the
// request thread (small uploads, whose finish needs the digest at once) or on the hashing thread
// (src/storage/hash-thread.ts).
import { createHash } from 'node:crypto';
import type { ContentDigest } from '../db/jobs.js';

export type { ContentDigest } from '../db/jobs.js';

export interface RunningHash {
  /**
   * Adds the next bytes (copied where they are kept: the caller's buffer may be reused). A
   * promise: too many bytes are not hashed yet, and no more may be added until it settles.
   */
  update(chunk: Buffer): Promise<void> | undefined;
  /** Hands on bytes held back for a batch (the end of a write); a promise as for update. */
  flush(): Promise<void> | undefined;
  /** The digest of every byte added, or null when it was lost; the hash is spent either way. */
  digest(): Promise<ContentDigest | null>;
  /** Forgets it, unfinished. */
  drop(): void;
}

/** Hashes on the calling thread. */
export class InlineHash implements RunningHash {
  private readonly sha256 = createHash('sha256');
  private readonly md5 = createHash('md5');

  update(chunk: Buffer): undefined {
    this.sha256.update(chunk);
    this.md5.update(chunk);
    return undefined;
  }

  flush(): undefined {
    return undefined;
  }

  digest(): Promise<ContentDigest> {
    return Promise.resolve({ sha256: this.sha256.digest('hex'), md5: this.md5.digest('hex') });
  }

  drop(): void {}
}
