// Digest on the way in: SHA-256 and MD5 of an upload's bytes, computed as they are written, so
// processing need not read a finished upload back to hash it. The running state lives in this
// process only and is continued only by a write that starts exactly where it ends; anything else
// (another instance wrote meanwhile, a restart, a write whose stored length is not what was
// hashed) drops it, and processing makes its own pass over the stored bytes as before. Uploads
// larger than the small files are hashed on a hashing thread when one is given (hash-thread.ts).
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import { DataStore, type Upload } from '@tus/utils';
import type { FirstBytes } from '../db/jobs.js';
import type { HashThreads } from './hash-thread.js';
import { InlineHash, type ContentDigest, type RunningHash } from './running-hash.js';
import type { ObjectStorage } from './types.js';

export type { ContentDigest } from './running-hash.js';

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
  /** SHA-256 and MD5 of those bytes, here or on the hashing thread. */
  hash: RunningHash;
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
  /**
   * Hashes uploads declared larger than `headsUpTo` off the request thread; the small ones stay
   * here (their finish needs the digest at once).
   */
  hashThreads?: HashThreads;
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
  private readonly hashThreads: HashThreads | undefined;
  // Declared lengths of uploads not written to here yet, oldest first.
  private readonly lengths = new Map<string, number>();
  private heads = 0;

  constructor({ maxUploads = 10_000, maxIdleMs = 24 * 3600_000, headsUpTo = 2 ** 20, maxHeads = 512, summarizeHead, hashThreads }: ArrivalDigestOptions = {}) {
    this.maxUploads = maxUploads;
    this.maxIdleMs = maxIdleMs;
    this.headsUpTo = headsUpTo;
    this.maxHeads = maxHeads;
    this.summarizeHead = summarizeHead;
    this.hashThreads = hashThreads;
  }

  get size(): number {
    return this.running.size;
  }

  /**
   * The digest of an upload whose `size` bytes all went through this process, or null; either way
   * the state is gone afterwards (the upload is finished).
   */
  async take(uploadId: string, size: number): Promise<ArrivalDigest | null> {
    const state = this.remove(uploadId);
    if (!state) return null;
    if (state.offset !== size) {
      this.discard(state);
      return null;
    }
    const head = state.head && Buffer.concat(state.head, state.headLength);
    const digest = await state.hash.digest();
    return digest && { ...digest, head, first: state.first };
  }

  drop(uploadId: string): void {
    this.lengths.delete(uploadId);
    const state = this.remove(uploadId);
    if (state) this.discard(state);
  }

  /** Lets a state's hash go (a failed write, a reset, an eviction), in order with its bytes. */
  discard(state: RunningDigest): void {
    state.hash.drop();
  }

  /**
   * The upload's length as declared to this process (creation, deferred length): decides where
   * its first write hashes.
   */
  declareLength(uploadId: string, length: number): void {
    this.lengths.delete(uploadId);
    this.lengths.set(uploadId, length);
    if (this.lengths.size > this.maxUploads) this.lengths.delete(this.lengths.keys().next().value!);
  }

  /** The state a write at `offset` continues (a new one at 0), or null: that write is not hashed. */
  begin(uploadId: string, offset: number): RunningDigest | null {
    const existing = this.remove(uploadId);
    if (existing && existing.offset === offset) return existing;
    if (existing) this.discard(existing);
    if (offset !== 0) return null;
    this.evict();
    const length = this.lengths.get(uploadId);
    this.lengths.delete(uploadId);
    const head = this.heads < this.maxHeads ? [] : null;
    const hash = (length !== undefined && length > this.headsUpTo && this.hashThreads?.open()) || new InlineHash();
    return { offset: 0, hash, head, headLength: 0, first: null, touchedAt: Date.now() };
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
    // Nothing held back between writes (an interrupted write's last bytes).
    void state.hash.flush();
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
      this.discard(this.remove(id)!);
    }
  }
}

/**
 * Adds the next bytes of an upload to its running digest (and to its head, while kept); a
 * promise when no more may be added until it settles (the hashing thread is behind).
 */
export function absorb(state: RunningDigest, chunk: Buffer): Promise<void> | undefined {
  if (state.head && state.headLength < ARRIVAL_HEAD_BYTES) {
    // A copy: the chunk's buffer may be pooled and reused.
    const part = Buffer.from(chunk.subarray(0, ARRIVAL_HEAD_BYTES - state.headLength));
    state.head.push(part);
    state.headLength += part.length;
  }
  return state.hash.update(chunk);
}

/** Passes bytes through, adding them to the running digest and counting them. */
class Hasher extends Transform {
  seen = 0;
  constructor(private readonly state: RunningDigest) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const waiting = absorb(this.state, chunk);
    this.seen += chunk.length;
    if (waiting) waiting.then(() => callback(null, chunk), callback);
    else callback(null, chunk);
  }
  override _flush(callback: TransformCallback): void {
    // The body's last bytes reach the hash before the store sees its end.
    const waiting = this.state.hash.flush();
    if (waiting) waiting.then(() => callback(), callback);
    else callback();
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
    if (upload.size !== undefined) this.digests.declareLength(upload.id, upload.size);
    return this.inner.create(upload);
  }

  override getUpload(id: string): Promise<Upload> {
    return this.inner.getUpload(id);
  }

  override declareUploadLength(id: string, length: number): Promise<void> {
    this.digests.declareLength(id, length);
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
      else this.digests.discard(state);
      throw error;
    }
    if (stored === offset + hasher.seen) this.digests.settle(id, state, stored);
    else this.digests.discard(state);
    return stored;
  }
}

/** `storage` whose tus store digests what it writes into `digests`. */
export function withArrivalDigests(storage: ObjectStorage, digests: ArrivalDigests): ObjectStorage {
  const tusStore = new DigestingStore(storage.tusStore, digests);
  // The other operations stay the storage's own (with their `this`).
  return Object.assign(Object.create(storage) as ObjectStorage, { tusStore });
}
