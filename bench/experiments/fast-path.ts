// Experimental fast paths for @tus/server on Node, used by bench/baselines/bare-tus.ts to find
// out where bare @tus/server loses throughput against a raw Node sink (and by the proposal in
// bench/proposals/ that carries the winners into src/). Each piece can be switched on alone.
//
// 1. feedNodeRequestsDirectly(server): PATCH/POST bodies go from the Node IncomingMessage into
//    the store through ONE byte-limiting Transform, instead of srvx's Readable.toWeb (a Web
//    ReadableStream with a count-1 queue: pause/resume per chunk) → Readable.fromWeb (a promise
//    per chunk) → PassThrough proxy → StreamLimiter. Semantics kept: the byte limit (413),
//    graceful stop on context abort (the store saves what arrived), a client error → ABORTED
//    without destroying the request.
// 2. createFastFileStore(): FileStore whose write() has no pass-through Transform, a larger
//    write-stream buffer (fewer, bigger writev calls, and the socket keeps flowing while a write
//    is in the thread pool), and a choice of durability: none, fsync at the end (what
//    DurableFileStore does), or incremental (fdatasync every N bytes while receiving, so the disk
//    works in parallel with the network and the final fsync has little left to do).
import { open, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { FileStore } from '@tus/file-store';
import { ERRORS, type DataStore, type Server, type Upload } from '@tus/server';

type Context = { signal: AbortSignal; abort(): void; cancel(): void };
interface BodyHandler {
  store: DataStore;
  send(req: Request, context: Context, headers?: Headers): Promise<Response>;
  writeToStore(body: unknown, upload: Upload, maxFileSize: number, context: Context): Promise<number>;
}

/** Marks a request body that is read from the Node request, not through a Web stream. */
class NodeBody {
  constructor(readonly req: IncomingMessage) {}
}

/** Passes bytes through until more than `max` have come; then fails with 413 (as StreamLimiter). */
export class ByteLimit extends Transform {
  seen = 0;
  constructor(
    private readonly max: number,
    highWaterMark = 1 << 20,
  ) {
    super({ highWaterMark });
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.max) callback(Object.assign(new Error(ERRORS.ERR_MAX_SIZE_EXCEEDED.body), ERRORS.ERR_MAX_SIZE_EXCEEDED));
    else callback(null, chunk);
  }
}

async function writeNodeBody(
  store: DataStore,
  req: IncomingMessage,
  upload: Upload,
  maxFileSize: number,
  context: Context,
): Promise<number> {
  if (context.signal.aborted) throw ERRORS.ABORTED;
  const limiter = new ByteLimit(maxFileSize);
  let sourceError: unknown;
  // A client error must fail the write without @tus/server destroying the request (the socket
  // would hang up instead of getting an answer).
  const onSourceError = (error: unknown) => {
    sourceError = error;
    req.unpipe(limiter);
    if (!context.signal.aborted) limiter.destroy(error as Error);
  };
  // Asked to stop (lock wanted elsewhere, shutdown): stop reading, keep what arrived.
  const onAbort = () => {
    req.unpipe(limiter);
    if (!limiter.destroyed) limiter.end();
  };
  req.on('error', onSourceError);
  context.signal.addEventListener('abort', onAbort, { once: true });
  req.pipe(limiter);
  try {
    return await store.write(limiter as unknown as Readable, upload.id, upload.offset);
  } catch (error) {
    req.unpipe(limiter);
    if (sourceError !== undefined || (error instanceof Error && error.name === 'AbortError')) throw ERRORS.ABORTED;
    // The store wraps failures (FILE_WRITE_ERROR); the size limit must stay a 413.
    if (limiter.seen > maxFileSize) throw ERRORS.ERR_MAX_SIZE_EXCEEDED;
    throw error;
  } finally {
    req.off('error', onSourceError);
    context.signal.removeEventListener('abort', onAbort);
  }
}

export function feedNodeRequestsDirectly(server: Server): void {
  for (const method of ['PATCH', 'POST'] as const) {
    const handler = server.handlers[method] as unknown as BodyHandler;
    const send = handler.send.bind(handler);
    const writeToStore = handler.writeToStore.bind(handler);
    handler.send = (req, context, headers) => {
      const node = (req as Request & { runtime?: { node?: { req?: IncomingMessage } } }).runtime?.node?.req;
      // Shadow srvx's lazy `body` getter before anything touches it (it would call Readable.toWeb).
      if (node) Object.defineProperty(req, 'body', { value: new NodeBody(node), configurable: true });
      return send(req, context, headers);
    };
    handler.writeToStore = (body, upload, maxFileSize, context) =>
      body instanceof NodeBody
        ? writeNodeBody(handler.store, body.req, upload, maxFileSize, context)
        : writeToStore(body, upload, maxFileSize, context);
  }
}

export type Durability = 'none' | 'end' | 'incremental';

/**
 * A file sink on a FileHandle: writev of whatever queued up, fdatasync every `syncEvery` bytes in
 * the background when incremental, fsync before 'finish' unless durability is none.
 */
export class FileSink extends Writable {
  bytesWritten = 0;
  private handle: FileHandle | null = null;
  private position: number;
  private sinceSync = 0;
  private pendingSync: Promise<void> | null = null;

  constructor(
    private readonly file: string,
    start: number,
    private readonly durability: Durability,
    highWaterMark: number,
    private readonly syncEvery = 32 << 20,
  ) {
    super({ highWaterMark });
    this.position = start;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    open(this.file, 'r+').then(
      (handle) => {
        this.handle = handle;
        callback();
      },
      (error: Error) => callback(error),
    );
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.writeAll(chunks.map((c) => c.chunk)).then(() => callback(), callback);
  }

  private async writeAll(buffers: Buffer[]): Promise<void> {
    const handle = this.handle!;
    let total = 0;
    for (const b of buffers) total += b.length;
    let written = 0;
    while (written < total) {
      // writev may write less than asked; continue from where it stopped.
      let skip = written;
      const rest: Buffer[] = [];
      for (const b of buffers) {
        if (skip >= b.length) {
          skip -= b.length;
          continue;
        }
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
      const { bytesWritten } = await handle.writev(rest, this.position + written);
      written += bytesWritten;
    }
    this.position += total;
    this.bytesWritten += total;
    if (this.durability === 'incremental') {
      this.sinceSync += total;
      if (this.sinceSync >= this.syncEvery && !this.pendingSync) {
        this.sinceSync = 0;
        this.pendingSync = handle.datasync().finally(() => (this.pendingSync = null));
      }
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    const done = async () => {
      if (this.pendingSync) await this.pendingSync;
      if (this.durability !== 'none') await this.handle!.sync();
    };
    done().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const handle = this.handle;
    this.handle = null;
    const settle = this.pendingSync ?? Promise.resolve();
    settle
      .catch(() => {})
      .then(() => handle?.close())
      .then(
        () => callback(error),
        () => callback(error),
      );
  }
}

export interface FastFileStoreOptions {
  directory: string;
  /** How write() is done: the stock FileStore's, a plain fs.WriteStream, or FileSink. */
  writer: 'stock' | 'writestream' | 'sink';
  durability: Durability;
  highWaterMark: number;
}

export function createFastFileStore(options: FastFileStoreOptions): FileStore {
  if (options.writer === 'stock' && options.durability === 'none') return new FileStore({ directory: options.directory });
  class Store extends FileStore {
    override async write(readable: Readable, id: string, offset: number): Promise<number> {
      const file = path.join(this.directory, id);
      const out =
        options.writer === 'sink'
          ? new FileSink(file, offset, options.durability, options.highWaterMark)
          : createWriteStream(file, {
              flags: 'r+',
              start: offset,
              flush: options.durability !== 'none',
              highWaterMark: options.writer === 'stock' ? undefined : options.highWaterMark,
            });
      try {
        await pipeline(readable, out);
      } catch {
        throw ERRORS.FILE_WRITE_ERROR;
      }
      return offset + out.bytesWritten;
    }
  }
  return new Store({ directory: options.directory });
}
