// Digest on the way in: SHA-256 and MD5 of an upload's bytes, computed as they are written, so
// processing need not read a finished upload back to hash it. The running state lives in this
// process only and is continued only by a write that starts exactly where it ends; anything else
// (another instance wrote meanwhile, a restart, a write whose stored length is not what was
// hashed) drops it, and processing makes its own pass over the stored bytes as before.
import { createHash, type Hash } from 'node:crypto';
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import { DataStore, type Upload } from '@tus/utils';
import type { FirstBytes } from '../db/jobs.js';
import type { ObjectStorage } from './types.js';

/** The digests of every byte of an upload, hex. */
export interface ContentDigest {
  sha256: string;
  md5: string;
}

/** How many of an upload's first bytes are kept with its running digest (for the type sniff). */
export const ARRIVAL_HEAD_BYTES = 64 * 1024;

/**
 * An upload's digests and its first bytes (all of them when it is no longer than the head), or
 * null for the head when it was not kept (a large upload, too many uploads in flight).
 */
export interface ArrivalDigest extends ContentDigest {
  head: Buffer | null;
  /** A larger upload's first bytes, summarised when they had arrived (null: not summarised). */
  first: FirstBytes | null;
}

export interface RunningDigest {
  /** Bytes [0, offset) are hashed. */
  offset: number;
  sha256: Hash;
  md5: Hash;
  /** The first min(offset, ARRIVAL_HEAD_BYTES) bytes, in arrival order; null once not kept. */
  head: Buffer[] | null;
  headLength: number;
  /** What the head said, once it was let go (an upload larger than `headsUpTo`). */
  first: FirstBytes | null;
  touchedAt: number;
}

export interface ArrivalDigestOptions {
  /** Running digests kept at once; the least recently written go first. */
  maxUploads?: number;
  /** A digest not written to for this long is dropped (an abandoned upload). */
  maxIdleMs?: number;
  /** Heads are kept only for uploads no longer than this (the small files finished inline). */
  headsUpTo?: number;
  /** Uploads holding a head at once: bounds their memory at this × ARRIVAL_HEAD_BYTES. */
  maxHeads?: number;
  /**
   * Summarises the head of an upload that outgrows `headsUpTo` before the head is let go (the
   * type sniff, the FSEQ header), so processing need not read its first bytes back.
   */
  summarizeHead?: (head: Buffer) => FirstBytes;
}

/** The running digests of the uploads this process is receiving, by upload id. */
export class ArrivalDigests {
  // Insertion order is recency order: every write re-inserts its upload.
  private readonly running = new Map<string, RunningDigest>();
  private readonly maxUploads: number;
  private readonly maxIdleMs: number;
  private readonly headsUpTo: number;
  private readonly maxHeads: number;
  private readonly summarizeHead: ((head: Buffer) => FirstBytes) | undefined;
  private heads = 0;

  constructor({ maxUploads = 10_000, maxIdleMs = 24 * 3600_000, headsUpTo = 2 ** 20, maxHeads = 512, summarizeHead }: ArrivalDigestOptions = {}) {
    this.maxUploads = maxUploads;
    this.maxIdleMs = maxIdleMs;
    this.headsUpTo = headsUpTo;
    this.maxHeads = maxHeads;
    this.summarizeHead = summarizeHead;
  }

  get size(): number {
    return this.running.size;
  }

  /**
   * The digest of an upload whose `size` bytes all went through this process, or null; either way
   * the state is gone afterwards (the upload is finished).
   */
  take(uploadId: string, size: number): ArrivalDigest | null {
    const state = this.remove(uploadId);
    if (!state || state.offset !== size) return null;
    const head = state.head && Buffer.concat(state.head, state.headLength);
    return { sha256: state.sha256.digest('hex'), md5: state.md5.digest('hex'), head, first: state.first };
  }

  drop(uploadId: string): void {
    this.remove(uploadId);
  }

  /** The state a write at `offset` continues (a new one at 0), or null: that write is not hashed. */
  begin(uploadId: string, offset: number): RunningDigest | null {
    const existing = this.remove(uploadId);
    if (existing && existing.offset === offset) return existing;
    if (offset !== 0) return null;
    this.evict();
    const head = this.heads < this.maxHeads ? [] : null;
    return { offset: 0, sha256: createHash('sha256'), md5: createHash('md5'), head, headLength: 0, first: null, touchedAt: Date.now() };
  }

  /** A write hashed `state` up to `offset` and the store holds exactly that much: kept. */
  settle(uploadId: string, state: RunningDigest, offset: number): void {
    state.offset = offset;
    state.touchedAt = Date.now();
    if (offset > this.headsUpTo && state.head) {
      // Past the small files: the head (complete by now) goes, what it said stays.
      if (this.summarizeHead && state.headLength === ARRIVAL_HEAD_BYTES) state.first = this.summarizeHead(Buffer.concat(state.head, state.headLength));
      state.head = null;
    }
    if (state.head) this.heads += 1;
    this.running.set(uploadId, state);
  }

  private remove(uploadId: string): RunningDigest | undefined {
    const state = this.running.get(uploadId);
    if (!state) return undefined;
    this.running.delete(uploadId);
    if (state.head) this.heads -= 1;
    return state;
  }

  private evict(): void {
    const idleBefore = Date.now() - this.maxIdleMs;
    for (const [id, state] of this.running) {
      if (this.running.size < this.maxUploads && state.touchedAt >= idleBefore) break;
      this.remove(id);
    }
  }
}

/** Adds the next bytes of an upload to its running digest (and to its head, while kept). */
export function absorb(state: RunningDigest, chunk: Buffer): void {
  state.sha256.update(chunk);
  state.md5.update(chunk);
  if (state.head && state.headLength < ARRIVAL_HEAD_BYTES) {
    // A copy: the chunk's buffer may be pooled and reused.
    const part = Buffer.from(chunk.subarray(0, ARRIVAL_HEAD_BYTES - state.headLength));
    state.head.push(part);
    state.headLength += part.length;
  }
}

/** Passes bytes through, adding them to the running digest and counting them. */
class Hasher extends Transform {
  seen = 0;
  constructor(private readonly state: RunningDigest) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    absorb(this.state, chunk);
    this.seen += chunk.length;
    callback(null, chunk);
  }
}

/** A DataStore that hashes what is written through it and otherwise is `inner`. */
export class DigestingStore extends DataStore {
  constructor(
    private readonly inner: DataStore,
    private readonly digests: ArrivalDigests,
  ) {
    super();
    this.extensions = inner.extensions;
  }

  override hasExtension(extension: string): boolean {
    return this.inner.hasExtension(extension);
  }

  override create(upload: Upload): Promise<Upload> {
    return this.inner.create(upload);
  }

  override getUpload(id: string): Promise<Upload> {
    return this.inner.getUpload(id);
  }

  override declareUploadLength(id: string, length: number): Promise<void> {
    return this.inner.declareUploadLength(id, length);
  }

  override deleteExpired(): Promise<number> {
    return this.inner.deleteExpired();
  }

  override getExpiration(): number {
    return this.inner.getExpiration();
  }

  override remove(id: string): Promise<void> {
    this.digests.drop(id);
    return this.inner.remove(id);
  }

  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    const state = this.digests.begin(id, offset);
    if (!state) return this.inner.write(readable, id, offset);
    const hasher = new Hasher(state);
    // Errors travel both ways as in a direct write: a failing body fails the store's write, a
    // failing store stops reading the body.
    pipeline(readable, hasher, () => {});
    let stored: number;
    try {
      stored = await this.inner.write(hasher, id, offset);
    } catch (error) {
      // What reached storage counts (the client resumes from it): if that is what was hashed,
      // the next write continues the digest.
      const after = await this.inner.getUpload(id).then(
        (upload) => upload.offset,
        () => null,
      );
      if (after === offset + hasher.seen) this.digests.settle(id, state, after);
      throw error;
    }
    if (stored === offset + hasher.seen) this.digests.settle(id, state, stored);
    return stored;
  }
}

/** `storage` whose tus store digests what it writes into `digests`. */
export function withArrivalDigests(storage: ObjectStorage, digests: ArrivalDigests): ObjectStorage {
  const tusStore = new DigestingStore(storage.tusStore, digests);
  // The other operations stay the storage's own (with their `this`).
  return Object.assign(Object.create(storage) as ObjectStorage, { tusStore });
}
