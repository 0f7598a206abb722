// SHA-256 and MD5 of large uploads computed on worker threads, so the request thread only copies
// the bytes across (issue #23). Each upload's hashes live in one thread; the request thread sends
// them batches and waits only when too many bytes are not hashed yet (memory stays bounded) and
// for the digest at the finish. A thread that dies takes the digests it held with it: those
// uploads are hashed from storage by processing, as any upload whose digest is missing.
import { Worker } from 'node:worker_threads';
import type { Logger } from '../logger.js';
import type { ContentDigest, RunningHash } from './running-hash.js';

// Plain JavaScript, evaluated: the thread runs the same under tsx, vitest and the built server.
// Messages on one port arrive in order, so a drop or a digest request follows the bytes before it.
const THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
const open = (key) => {
  let hash = hashes.get(key);
  if (!hash) hashes.set(key, (hash = { sha256: createHash('sha256'), md5: createHash('md5') }));
  return hash;
};
parentPort.on('message', (message) => {
  if (message.op === 'update') {
    const hash = open(message.key);
    hash.sha256.update(message.bytes);
    hash.md5.update(message.bytes);
    // The batch's memory goes back for the next batch.
    parentPort.postMessage({ op: 'hashed', key: message.key, length: message.bytes.length, bytes: message.bytes }, [message.bytes.buffer]);
  } else if (message.op === 'digest') {
    const hash = open(message.key);
    hashes.delete(message.key);
    parentPort.postMessage({ op: 'digest', key: message.key, sha256: hash.sha256.digest('hex'), md5: hash.md5.digest('hex') });
  } else if (message.op === 'drop') {
    hashes.delete(message.key);
  }
});
`;

type FromThread = { op: 'hashed'; key: number; length: number; bytes: Uint8Array } | ({ op: 'digest'; key: number } & ContentDigest);

export interface HashThreadOptions {
  /** Threads at most; an upload stays on the thread it started on. */
  threads?: number;
  /** Bytes copied together into one message. */
  batchBytes?: number;
  /** Bytes of one upload sent and not hashed yet, at most. */
  maxInFlightPerUpload?: number;
  /** Bytes of all uploads sent and not hashed yet, at most. */
  maxInFlight?: number;
  logger?: Pick<Logger, 'warn'>;
}

interface Waiter {
  hash: ThreadHash;
  /** Sends the batch: run at once when there is room, so the next waiter sees it counted. */
  go: () => void;
}

class Thread {
  readonly hashes = new Map<number, ThreadHash>();
  /** Bytes sent to it and not hashed yet, of dropped hashes too. */
  inFlight = 0;
  dead = false;
  constructor(readonly worker: Worker) {}
}

/** The hashing threads of this process, started when first needed. */
export class HashThreads {
  readonly batchBytes: number;
  readonly maxInFlightPerUpload: number;
  readonly maxInFlight: number;
  /** The most bytes in flight seen at once, of one upload and of all (for tests and benchmarks). */
  readonly peak = { perUpload: 0, total: 0 };
  private readonly slots: Array<Thread | null>;
  private readonly logger: Pick<Logger, 'warn'> | undefined;
  private inFlight = 0;
  private waiters: Waiter[] = [];
  // Batch buffers back from the threads, for reuse (a few: enough to keep two uploads going).
  private readonly spare: Buffer[] = [];
  private nextKey = 1;
  private stopped = false;
  /** Running hashes opened so far (for tests and benchmarks). */
  opened = 0;

  constructor({ threads = 1, batchBytes = 256 * 1024, maxInFlightPerUpload = 8 * 2 ** 20, maxInFlight = 64 * 2 ** 20, logger }: HashThreadOptions = {}) {
    if (batchBytes > maxInFlightPerUpload || maxInFlightPerUpload > maxInFlight) throw new Error('hash thread bounds: batch ≤ per upload ≤ total');
    this.slots = Array.from({ length: threads }, () => null);
    this.batchBytes = batchBytes;
    this.maxInFlightPerUpload = maxInFlightPerUpload;
    this.maxInFlight = maxInFlight;
    this.logger = logger;
  }

  /** Bytes sent to the threads and not hashed yet. */
  get inFlightBytes(): number {
    return this.inFlight;
  }

  /** A new running hash on the least busy thread, or null once stopped. */
  open(): RunningHash | null {
    if (this.stopped) return null;
    let thread: Thread | null = null;
    for (const [index, slot] of this.slots.entries()) {
      const candidate = slot && !slot.dead ? slot : (this.slots[index] = this.spawn());
      if (!thread || candidate.hashes.size < thread.hashes.size) thread = candidate;
    }
    this.opened += 1;
    const hash = new ThreadHash(this.nextKey++, thread!, this);
    thread!.hashes.set(hash.key, hash);
    return hash;
  }

  /** Ends the threads; digests still running are lost. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.terminate();
  }

  /** Ends the threads as a crash would (tests): their digests are lost, new uploads get new ones. */
  async terminate(): Promise<void> {
    await Promise.all(this.slots.map((thread) => thread && !thread.dead && thread.worker.terminate()));
  }

  /** A buffer for the next batch. */
  batchBuffer(): Buffer {
    return this.spare.pop() ?? Buffer.allocUnsafeSlow(this.batchBytes);
  }

  /** Sends the batch of `hash` now if it fits the bounds (undefined), else once it does (the promise). */
  sendWhenRoom(hash: ThreadHash): Promise<void> | undefined {
    if (this.fits(hash)) {
      hash.send();
      return undefined;
    }
    return new Promise((resolve) =>
      this.waiters.push({
        hash,
        go: () => {
          hash.send();
          resolve();
        },
      }),
    );
  }

  /** Counts bytes sent to a thread. */
  sent(hash: ThreadHash, length: number): void {
    hash.inFlight += length;
    hash.thread.inFlight += length;
    this.inFlight += length;
    this.peak.perUpload = Math.max(this.peak.perUpload, hash.inFlight);
    this.peak.total = Math.max(this.peak.total, this.inFlight);
  }

  private fits(hash: ThreadHash): boolean {
    const length = hash.batched;
    return hash.lost || (hash.inFlight + length <= this.maxInFlightPerUpload && this.inFlight + length <= this.maxInFlight);
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const waiting = this.waiters;
    this.waiters = [];
    for (const waiter of waiting) {
      if (this.fits(waiter.hash)) waiter.go();
      else this.waiters.push(waiter);
    }
  }

  private spawn(): Thread {
    // No inherited flags (a loader such as tsx): the source is plain JavaScript.
    const worker = new Worker(THREAD_SOURCE, { eval: true, execArgv: [] });
    worker.unref();
    const thread = new Thread(worker);
    worker.on('message', (message: FromThread) => this.received(thread, message));
    worker.on('error', (error) => this.lose(thread, error));
    worker.on('messageerror', (error) => this.lose(thread, error));
    worker.on('exit', (code) => this.lose(thread, new Error(`hashing thread exited with code ${code}`)));
    return thread;
  }

  private received(thread: Thread, message: FromThread): void {
    // Its in-flight bytes were written off when it died.
    if (thread.dead) return;
    const hash = thread.hashes.get(message.key);
    if (message.op === 'hashed') {
      // Bytes of a dropped hash are hashed (and counted) all the same.
      thread.inFlight -= message.length;
      this.inFlight -= message.length;
      if (hash) hash.inFlight -= message.length;
      if (this.spare.length < 8 && message.bytes.buffer.byteLength === this.batchBytes) this.spare.push(Buffer.from(message.bytes.buffer as ArrayBuffer));
      this.wake();
    } else if (hash) {
      thread.hashes.delete(message.key);
      hash.finished({ sha256: message.sha256, md5: message.md5 });
    }
  }

  /** The thread is gone: so is every digest it held. Said once per thread. */
  private lose(thread: Thread, error: unknown): void {
    if (thread.dead) return;
    thread.dead = true;
    if (!this.stopped) this.logger?.warn({ err: error, uploads: thread.hashes.size }, 'hashing thread failed; its uploads are hashed from storage');
    this.inFlight -= thread.inFlight;
    thread.inFlight = 0;
    for (const hash of thread.hashes.values()) {
      hash.inFlight = 0;
      hash.lose();
    }
    thread.hashes.clear();
    this.wake();
  }

  /** @internal */
  post(thread: Thread, message: { op: 'update'; key: number; bytes: Uint8Array } | { op: 'digest' | 'drop'; key: number }): void {
    if (message.op === 'update') thread.worker.postMessage(message, [message.bytes.buffer as ArrayBuffer]);
    else thread.worker.postMessage(message);
  }
}

/** One upload's hashes on a thread. */
class ThreadHash implements RunningHash {
  inFlight = 0;
  lost = false;
  private batch: Buffer | null = null;
  private batchLength = 0;
  private whenDigested: ((digest: ContentDigest | null) => void) | null = null;

  constructor(
    readonly key: number,
    readonly thread: Thread,
    private readonly threads: HashThreads,
  ) {}

  update(chunk: Buffer): Promise<void> | undefined {
    let at = 0;
    while (at < chunk.length && !this.lost) {
      this.batch ??= this.threads.batchBuffer();
      const copied = chunk.copy(this.batch, this.batchLength, at);
      at += copied;
      this.batchLength += copied;
      if (this.batchLength < this.batch.length) continue;
      const waiting = this.threads.sendWhenRoom(this);
      if (waiting) {
        const rest = chunk.subarray(at);
        return waiting.then(() => this.update(rest));
      }
    }
    return undefined;
  }

  flush(): Promise<void> | undefined {
    if (this.batchLength === 0 || this.lost) return undefined;
    return this.threads.sendWhenRoom(this);
  }

  /** Bytes copied and not sent yet. */
  get batched(): number {
    return this.batchLength;
  }

  async digest(): Promise<ContentDigest | null> {
    await this.flush();
    if (this.lost) return null;
    return new Promise((resolve) => {
      this.whenDigested = resolve;
      this.threads.post(this.thread, { op: 'digest', key: this.key });
    });
  }

  drop(): void {
    if (this.lost) return;
    this.forget();
    this.thread.hashes.delete(this.key);
    if (!this.thread.dead) this.threads.post(this.thread, { op: 'drop', key: this.key });
  }

  /** @internal The thread answered. */
  finished(digest: ContentDigest): void {
    this.whenDigested?.(digest);
    this.whenDigested = null;
  }

  /** @internal The thread died. */
  lose(): void {
    this.forget();
    this.whenDigested?.(null);
    this.whenDigested = null;
  }

  private forget(): void {
    this.lost = true;
    this.batch = null;
    this.batchLength = 0;
  }

  /** @internal Sends the batch (HashThreads.sendWhenRoom decides when). */
  send(): void {
    // Transferred (the batch owns its memory): the thread gets it without a second copy.
    if (this.batchLength === 0 || this.lost || !this.batch) return;
    const bytes = new Uint8Array(this.batch.buffer, this.batch.byteOffset, this.batchLength);
    this.batch = null;
    this.batchLength = 0;
    this.threads.sent(this, bytes.length);
    this.threads.post(this.thread, { op: 'update', key: this.key, bytes });
  }
}
