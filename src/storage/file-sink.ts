// A durable file writer for uploads: writes at an offset with writev (whatever queued up while
// the previous write was in the thread pool goes in one call), starts an fdatasync every
// `syncEvery` bytes while the body is still arriving, so the disk works in parallel with the
// network, and fsyncs before 'finish' — an acknowledged offset survives a power cut.
//
// Compared with fs.createWriteStream({ flush: true }) (16 KiB buffer, one write per chunk, the
// whole file flushed only at the end), this roughly halves the time from first byte to
// acknowledgement for large PATCHes on a disk that is slower than loopback (see bench/).
import { open, type FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

export class DurableFileSink extends Writable {
  bytesWritten = 0;
  private handle: FileHandle | null = null;
  private position: number;
  private sinceSync = 0;
  private pendingSync: Promise<void> | null = null;

  constructor(
    private readonly file: string,
    start: number,
    { highWaterMark = 1 << 20, syncEvery = 16 << 20 }: { highWaterMark?: number; syncEvery?: number } = {},
  ) {
    super({ highWaterMark });
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
    this.writeAll([chunk]).then(() => callback(), callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.writeAll(chunks.map((c) => c.chunk)).then(() => callback(), callback);
  }

  private async writeAll(buffers: Buffer[]): Promise<void> {
    const handle = this.handle!;
    let total = 0;
    for (const b of buffers) total += b.length;
    let done = 0;
    while (done < total) {
      // writev may write less than asked: go on from where it stopped.
      let skip = done;
      const rest: Buffer[] = [];
      for (const b of buffers) {
        if (skip >= b.length) {
          skip -= b.length;
          continue;
        }
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
      const { bytesWritten } = await handle.writev(rest, this.position + done);
      done += bytesWritten;
      this.bytesWritten += bytesWritten;
    }
    this.position += total;
    this.sinceSync += total;
    if (this.sinceSync >= this.syncEvery && !this.pendingSync) {
      this.sinceSync = 0;
      this.pendingSync = handle.datasync().finally(() => {
        this.pendingSync = null;
      });
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    const flush = async () => {
      if (this.pendingSync) await this.pendingSync;
      await this.handle!.sync();
    };
    flush().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const handle = this.handle;
    this.handle = null;
    (this.pendingSync ?? Promise.resolve())
      .catch(() => {})
      .then(() => handle?.close())
      .then(
        () => callback(error),
        () => callback(error),
      );
  }
}
