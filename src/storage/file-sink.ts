// A durable file writer for uploads: copies the body into two 1 MiB buffers in turn and writes one
// while the other fills, starts an fdatasync every `syncEvery` bytes while the body is still
// arriving, so the disk works in parallel with the network, and fsyncs before 'finish' — an
// acknowledged offset survives a power cut. A body that breaks off still has what arrived written.
//
// Compared with fs.createWriteStream({ flush: true }) (16 KiB buffer, one write per chunk, the
// whole file flushed only at the end), the flushing overlaps the receiving, so the acknowledgement
// of a large PATCH does not wait for all of it (bench/ measures it).
import { open, type FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

/** Bytes copied into one buffer before it is written (and the size of each of the two buffers). */
const SLAB = 1 << 20;
/**
 * The first buffer of a body is small: most bodies of small files fit in it, and a 1 MiB buffer
 * for each of them (external memory V8 counts) halved the rate of 64 KiB creations.
 */
const FIRST_SLAB = 64 << 10;

/**
 * Buffers of finished sinks, for the next ones. A buffer lives as long as its PATCH, so with one
 * pair per PATCH every chunk of a chunked upload left promoted garbage behind, which only V8's
 * mark-compacts free. Reused, they stay in the old generation and nothing is left to collect. At most 8 of each size stay idle.
 */
const IDLE_SLABS_PER_SIZE = 8;
const idleSlabs = new Map<number, Buffer[]>([
  [FIRST_SLAB, []],
  [SLAB, []],
]);
const counts = { taken: 0, allocated: 0 };

function takeSlab(size: number): Buffer {
  counts.taken++;
  const idle = idleSlabs.get(size)?.pop();
  if (idle) return idle;
  counts.allocated++;
  return Buffer.allocUnsafeSlow(size);
}

function giveBack(slabs: Buffer[]): void {
  for (const slab of slabs) {
    const idle = idleSlabs.get(slab.length);
    if (idle && idle.length < IDLE_SLABS_PER_SIZE) idle.push(slab);
  }
}

/** Buffers sinks took from the pool and how many of those had to be allocated (diagnostics, tests). */
export function fileSinkBufferCounts(): { taken: number; allocated: number } {
  return { ...counts };
}

export class DurableFileSink extends Writable {
  bytesWritten = 0;
  private handle: FileHandle | null = null;
  private position: number;
  private sinceSync = 0;
  private pendingSync: Promise<void> | null = null;
  // Incoming chunks are copied into one of two buffers at once and released: a chunk held while
  // the previous write is in the thread pool outlives two scavenges, is promoted, and then only a
  // full mark-compact frees its memory; with the disk busy V8 ran them continually. Copying is far
  // cheaper than those collections.
  private slab: Buffer | null = null;
  private filled = 0;
  /** This sink's buffers that are neither filling nor being written. */
  private readonly free: Buffer[] = [];
  private writing: Promise<void> | null = null;
  private failure: Error | null = null;
  private bytesReceived = 0;
  /**
   * Every buffer this sink took: given back once no write can use them any more. At most three
   * (the small first one, then one filling while one is written): a written buffer goes back to
   * `free`, and a new one is taken only when none of the right size is free.
   */
  private readonly owned: Buffer[] = [];
  private destroying = false;

  constructor(
    private readonly file: string,
    start: number,
    { syncEvery = 16 << 20, onDurable }: { syncEvery?: number; onDurable?: (offset: number) => void } = {},
  ) {
    super({ highWaterMark: SLAB });
    this.position = start;
    this.syncEvery = syncEvery;
    this.onDurable = onDurable;
  }

  private readonly syncEvery: number;
  /** Told the file position each fdatasync made durable while the body was still arriving. */
  private readonly onDurable: ((offset: number) => void) | undefined;

  override _construct(callback: (error?: Error | null) => void): void {
    open(this.file, 'r+').then(
      (handle) => {
        this.handle = handle;
        callback();
      },
      (error: Error) => callback(error),
    );
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.copyIn([chunk]).then(() => callback(), callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.copyIn(chunks.map((c) => c.chunk)).then(() => callback(), callback);
  }

  private async copyIn(buffers: Buffer[]): Promise<void> {
    for (const buffer of buffers) {
      let from = 0;
      while (from < buffer.length) {
        // Destroyed meanwhile: _destroy writes what was copied; nothing new may take a buffer.
        if (this.destroying) throw new Error('the file sink was destroyed');
        if (!this.slab) {
          const size = this.bytesReceived === 0 ? FIRST_SLAB : SLAB;
          const at = this.free.findIndex((b) => b.length === size);
          if (at >= 0) {
            this.slab = this.free.splice(at, 1)[0]!;
          } else {
            this.slab = takeSlab(size);
            this.owned.push(this.slab);
          }
        }
        const copied = buffer.copy(this.slab, this.filled, from);
        this.filled += copied;
        this.bytesReceived += copied;
        from += copied;
        if (this.filled === this.slab.length) await this.flushSlab();
      }
    }
  }

  /** Starts writing the filled buffer (after the write before it: one in the thread pool). */
  private async flushSlab(): Promise<void> {
    await this.writing;
    if (this.failure) throw this.failure;
    const slab = this.slab;
    const filled = this.filled;
    this.slab = null;
    this.filled = 0;
    if (!slab || filled === 0) return;
    this.writing = this.writeAll(slab.subarray(0, filled)).then(
      () => {
        this.free.push(slab);
        this.writing = null;
      },
      (error: Error) => {
        this.failure = error;
        this.writing = null;
      },
    );
  }

  /** Whatever was received reaches the file (also when the body ends early: those bytes count). */
  private async drain(): Promise<void> {
    await this.flushSlab();
    await this.writing;
    if (this.failure) throw this.failure;
  }

  private async writeAll(buffer: Buffer): Promise<void> {
    const handle = this.handle!;
    let done = 0;
    while (done < buffer.length) {
      // write may write less than asked: go on from where it stopped.
      const { bytesWritten } = await handle.write(buffer, done, buffer.length - done, this.position + done);
      done += bytesWritten;
      this.bytesWritten += bytesWritten;
    }
    this.position += buffer.length;
    this.sinceSync += buffer.length;
    if (this.sinceSync >= this.syncEvery && !this.pendingSync) {
      this.sinceSync = 0;
      // Everything written before the fdatasync began is durable once it returns.
      const synced = this.position;
      this.pendingSync = handle
        .datasync()
        .then(() => this.onDurable?.(synced))
        .finally(() => {
          this.pendingSync = null;
        });
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    const flush = async () => {
      await this.drain();
      if (this.pendingSync) await this.pendingSync;
      await this.handle!.sync();
    };
    flush().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.destroying = true;
    const handle = this.handle;
    // The body broke off: what arrived is still written (the next HEAD reports it as the offset).
    const received = handle ? this.drain().catch(() => {}) : Promise.resolve();
    received
      .then(() => this.pendingSync)
      .catch(() => {})
      .then(() => {
        // The last write has returned and no new one can start: the buffers are free.
        this.slab = null;
        this.free.length = 0;
        giveBack(this.owned.splice(0));
        this.handle = null;
        return handle?.close();
      })
      .then(
        () => callback(error),
        () => callback(error),
      );
  }
}
