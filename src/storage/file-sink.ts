// A durable file writer for uploads: copies the body into two 1 MiB buffers in turn and writes one
// while the other fills, starts an fdatasync every `syncEvery` bytes while the body is still
// arriving, so the disk works in parallel with the network, and fsyncs before 'finish' — an
// acknowledged offset survives a power cut. A body that breaks off still has what arrived written.
//
// Compared with fs.createWriteStream({ flush: true }) (16 KiB buffer, one write per chunk, the
// whole file flushed only at the end), this roughly halves the time from first byte to
// acknowledgement for large PATCHes on a disk that is slower than loopback (see bench/).
import { open, type FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

/** Bytes copied into one buffer before it is written (and the size of each of the two buffers). */
const SLAB = 1 << 20;
/**
 * The first buffer of a body is small: most bodies of small files fit in it, and a 1 MiB buffer
 * for each of them (external memory V8 counts) halved the rate of 64 KiB creations.
 */
const FIRST_SLAB = 64 << 10;

export class DurableFileSink extends Writable {
  bytesWritten = 0;
  private handle: FileHandle | null = null;
  private position: number;
  private sinceSync = 0;
  private pendingSync: Promise<void> | null = null;
  // Incoming chunks are copied into one of two buffers at once and released: a chunk held while
  // the previous write is in the thread pool outlives two scavenges, is promoted, and then only a
  // full mark-compact frees its memory; with the disk busy that made V8 run mark-compacts every
  // ~50 ms (1.5 s of CPU per GiB on its helper threads, bench/). Copying costs ~0.1 s per GiB.
  private slab: Buffer | null = null;
  private filled = 0;
  private spare: Buffer | null = null;
  private writing: Promise<void> | null = null;
  private failure: Error | null = null;
  private bytesReceived = 0;

  constructor(
    private readonly file: string,
    start: number,
    { syncEvery = 16 << 20 }: { syncEvery?: number } = {},
  ) {
    super({ highWaterMark: SLAB });
    this.position = start;
    this.syncEvery = syncEvery;
  }

  private readonly syncEvery: number;

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
        if (!this.slab) {
          const size = this.bytesReceived === 0 ? FIRST_SLAB : SLAB;
          this.slab = this.spare?.length === size ? this.spare : Buffer.allocUnsafeSlow(size);
          this.spare = null;
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
        this.spare = slab;
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
      this.pendingSync = handle.datasync().finally(() => {
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
    const handle = this.handle;
    // The body broke off: what arrived is still written (the next HEAD reports it as the offset).
    const received = handle ? this.drain().catch(() => {}) : Promise.resolve();
    received
      .then(() => this.pendingSync)
      .catch(() => {})
      .then(() => {
        this.handle = null;
        return handle?.close();
      })
      .then(
        () => callback(error),
        () => callback(error),
      );
  }
}
