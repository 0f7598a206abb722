// Request bodies for PATCH (and POST creation-with-upload), from the Node request to the store.
//
// 1. Speed. Stock @tus/server on Node reads a body through srvx's `request.body` (the Node stream
//    turned into a Web ReadableStream that queues one chunk, so the socket pauses and resumes for
//    every 64 KiB) and turns it back with Readable.fromWeb (a promise per chunk), a PassThrough
//    proxy and a StreamLimiter. Here the Node IncomingMessage goes through one byte-limiting
//    Transform into the store (see bench/ for the measurements): the endpoint hands @tus/server a
//    TusRequest whose body is a NodeBody, and subclassed PATCH and POST handlers store it.
// 2. The checksum extension. With `Upload-Checksum` (header, or trailer for checksum-trailer), the
//    body is spooled to a temporary file while it is hashed, and reaches the store only if the
//    digest matches: a mismatch (460) or an interrupted body leaves the upload and its offset as
//    they were, on disk and on S3 alike, with memory bounded by the stream buffers.
// What @tus/server's BaseHandler.writeToStore guarantees is kept: the size limit answers 413; a
// client error fails the write without destroying the request; an abort of the request context
// (the lock is wanted by another request, or shutdown) stops reading and the store keeps what
// arrived; POST_RECEIVE progress events every `postReceiveInterval`.
// 3. A minimum rate. A body that brings fewer than `minRate.bytes` in a `minRate.windowMs` during
//    which the server was ready for more (the store not holding it back) is ended the way an
//    abort ends it: the store keeps what arrived (a checksummed body: nothing, it cannot be
//    verified). A PATCH then answers 408 BODY_TOO_SLOW with Connection: close (its details say the
//    offset now stored; HEAD says the same); a POST answers its 201 with Location and the offset
//    stored, and Connection: close. One owner's trickling bodies cannot hold sockets, lock
//    connections and store writes for as long as they like.
// 4. Hooks for the IETF draft (BodyHooks): the 104 once the upload exists, the store's durable
//    offsets while this body is written (progress 104s), and a body that completes an upload of
//    unknown length: bounded by what the quota has room for, its length declared under the lock.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import type { Server, ServerOptions } from '@tus/server';
import { ERRORS, EVENTS, type CancellationContext, type DataStore, type Upload } from '@tus/utils';
import { AppError } from '../errors.js';
import { listenDurableProgress, type DurableProgressListener } from '../storage/durable-progress.js';
import { CHECKSUM_ALGORITHMS, parseChecksum, type ParsedChecksum } from './protocol.js';

type Handlers = Server['handlers'];
/** What the body path uses of a @tus/server handler (all public). */
type BodyHandler = Pick<Handlers['PATCH'], 'store' | 'options' | 'listenerCount' | 'emit'>;

/** What a Web Request body streams. */
type Bytes = Uint8Array<ArrayBuffer>;

/** The Web stream of a Node request's bytes, bridged only once something reads it. */
function lazyWebBody(req: IncomingMessage): UnderlyingDefaultSource<Bytes> {
  let reader: ReadableStreamDefaultReader<Bytes> | undefined;
  return {
    async pull(controller) {
      reader ??= (Readable.toWeb(req) as ReadableStream<Bytes>).getReader();
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel(reason) {
      if (reader) await reader.cancel(reason);
      else req.destroy();
    },
  };
}

/** What the endpoint wants to know while a body is stored (the IETF draft's interim responses). */
export interface BodyHooks {
  /** Runs once the upload exists, before a byte of this body is stored (the draft's 104). */
  beforeStore?: (uploadId: string) => void;
  /** The upload's durable offset, each time the store reports one while this body is written. */
  durableProgress?: DurableProgressListener;
  /**
   * Where the bytes of a body of unknown length must end, asked once the upload exists (a
   * creation that reserves what its owner's quota has room for).
   */
  maxEnd?: (uploadId: string) => Promise<number>;
  /**
   * A request that completes an upload of unknown length with whatever its body brings: called
   * under the upload lock once the body has arrived whole and is stored, to declare the length as
   * the offset reached; the upload is then complete.
   */
  completeAt?: (uploadId: string, offset: number) => Promise<void>;
}

/**
 * The body of a request to @tus/server (the request is a TusRequest, src/tus/request-context.ts).
 * The handlers below read it from the Node request; as a Web stream it is the same bytes, bridged
 * only if something else reads it (a high-water mark of 0: nothing is pulled until then).
 */
export class NodeBody extends ReadableStream<Bytes> {
  constructor(
    /** The Web request this is the body of (what POST_RECEIVE reports). */
    readonly request: Request,
    readonly req: IncomingMessage,
    readonly hooks: BodyHooks = {},
  ) {
    super(lazyWebBody(req), { highWaterMark: 0 });
  }
}

/** Incremental digest for any supported algorithm (crc32 is not an OpenSSL hash). */
function digester(algorithm: string): { update(chunk: Buffer): void; digest(): Buffer } {
  if (algorithm === 'crc32') {
    let value = 0;
    return {
      update: (chunk) => {
        value = crc32(chunk, value);
      },
      digest: () => {
        const out = Buffer.alloc(4);
        out.writeUInt32BE(value >>> 0);
        return out;
      },
    };
  }
  const hash: Hash = createHash(CHECKSUM_ALGORITHMS[algorithm]!.node);
  return { update: (chunk) => hash.update(chunk), digest: () => hash.digest() };
}

/** Passes bytes through until more than `max` have come, then fails with `exceeded` (a 413). */
class ByteLimit extends Transform {
  seen = 0;
  constructor(
    private readonly max: number,
    private readonly exceeded: { status_code: number; body: string },
    private readonly onBytes?: (seen: number, chunk: Buffer) => void,
  ) {
    // Room for a few socket reads while the store writes, so the socket keeps flowing.
    super({ highWaterMark: 256 << 10 });
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.max) return callback(Object.assign(new Error(this.exceeded.body), this.exceeded));
    this.onBytes?.(this.seen, chunk);
    callback(null, chunk);
  }
}

/** The request announces `Upload-Checksum` as a trailer (checksum-trailer extension). */
function announcesChecksumTrailer(req: IncomingMessage): boolean {
  const trailer = req.headers.trailer;
  return typeof trailer === 'string' && trailer.split(',').some((name) => name.trim().toLowerCase() === 'upload-checksum');
}

export interface BodyOptions {
  /** Where checksummed bodies wait for verification. */
  spoolDirectory: string;
  /** The least a body must bring per window; null or undefined: no minimum. */
  minRate?: { bytes: number; windowMs: number } | null;
}

/**
 * Calls `tooSlow` once if `limiter` sees fewer than `bytes` come in during a `windowMs` in which it
 * was never full (a full limiter means the store, not the client, is slow). Returns the stop.
 */
function watchRate(limiter: ByteLimit, { bytes, windowMs }: { bytes: number; windowMs: number }, tooSlow: () => void): () => void {
  let start = Date.now();
  let startSeen = limiter.seen;
  const timer = setInterval(
    () => {
      const now = Date.now();
      if (limiter.writableNeedDrain || limiter.readableLength >= limiter.readableHighWaterMark) {
        start = now;
        startSeen = limiter.seen;
        return;
      }
      if (now - start < windowMs) return;
      if (limiter.seen - startSeen < bytes) {
        clearInterval(timer);
        tooSlow();
        return;
      }
      start = now;
      startSeen = limiter.seen;
    },
    Math.max(25, Math.floor(windowMs / 8)),
  );
  timer.unref();
  return () => clearInterval(timer);
}

export const bodyTooSlow = (minRate: { bytes: number; windowMs: number }, offset: number) =>
  new AppError(
    408,
    'BODY_TOO_SLOW',
    `the request body brought less than ${minRate.bytes} bytes in ${minRate.windowMs / 1000} s; what arrived is stored: resume from the offset a HEAD request reports`,
    { uploadOffset: offset, minBytes: minRate.bytes, windowMs: minRate.windowMs },
    { Connection: 'close' },
  );

async function writeNodeBody(
  handler: BodyHandler,
  body: NodeBody,
  upload: Upload,
  maxFileSize: number,
  context: CancellationContext,
  options: BodyOptions,
): Promise<number> {
  if (context.signal.aborted) throw ERRORS.ABORTED;
  body.hooks.beforeStore?.(upload.id);
  const { req } = body;
  const header = req.headers['upload-checksum'];
  const expected: ParsedChecksum | null = typeof header === 'string' ? parseChecksum(header) : null;
  const checksummed = expected !== null || announcesChecksumTrailer(req);
  // Everything that awaits happens before the body is piped: from `req.pipe(limiter)` until its
  // consumer (pipeline or the store) listens, an abort would destroy the limiter with an error no
  // one handles, and an unhandled 'error' event ends the process.
  if (checksummed) {
    await mkdir(options.spoolDirectory, { recursive: true });
    if (context.signal.aborted) throw ERRORS.ABORTED;
  }

  let digest: ReturnType<typeof digester> | null = expected ? digester(expected.algorithm) : null;
  // A trailer names its algorithm only at the end: hash with every algorithm meanwhile.
  const all = !expected && checksummed ? Object.keys(CHECKSUM_ALGORITHMS).map((name) => [name, digester(name)] as const) : null;

  let progress: ((seen: number) => void) | undefined;
  if (!checksummed && handler.listenerCount(EVENTS.POST_RECEIVE) > 0) {
    const interval = handler.options.postReceiveInterval ?? 1000;
    let last = Date.now();
    progress = (seen) => {
      const now = Date.now();
      if (now - last < interval) return;
      last = now;
      handler.emit(EVENTS.POST_RECEIVE, body.request, { ...upload, offset: upload.offset + seen });
    };
  }
  // `maxFileSize` is what this body may hold: the rest of a declared Upload-Length (a longer body,
  // e.g. chunked, is BODY_EXCEEDS_UPLOAD_LENGTH), or for a deferred length the server's limit.
  const exceeded = upload.size === undefined ? ERRORS.ERR_MAX_SIZE_EXCEEDED : ERRORS.ERR_SIZE_EXCEEDED;
  const limiter = new ByteLimit(maxFileSize, exceeded, (seen, chunk) => {
    digest?.update(chunk);
    if (all) for (const [, d] of all) d.update(chunk);
    progress?.(seen);
  });

  let sourceError: unknown;
  const onSourceError = (error: unknown) => {
    sourceError = error;
    req.unpipe(limiter);
    if (!context.signal.aborted) limiter.destroy(error as Error);
  };
  const onAbort = () => {
    req.unpipe(limiter);
    // A checksummed body cut short cannot be verified: nothing of it is kept.
    if (checksummed) limiter.destroy(Object.assign(new Error('aborted'), { name: 'AbortError' }));
    else if (!limiter.destroyed) limiter.end();
  };
  req.on('error', onSourceError);
  context.signal.addEventListener('abort', onAbort, { once: true });
  let tooSlow = false;
  const stopWatching = options.minRate
    ? watchRate(limiter, options.minRate, () => {
        if (req.readableEnded || context.signal.aborted) return;
        tooSlow = true;
        onAbort();
      })
    : () => {};
  req.once('end', stopWatching);
  req.pipe(limiter);

  /** What a body ended for its rate answers once the store has kept what arrived. */
  const afterWrite = (offset: number): number => {
    if (!tooSlow || offset === upload.size) return offset;
    if (body.request.method === 'POST') {
      // The client needs the Location to resume: the creation answers 201 (Connection: close).
      context.signal.removeEventListener('abort', onAbort);
      context.abort();
      return offset;
    }
    throw bodyTooSlow(options.minRate!, offset);
  };

  let spool: string | null = null;
  // Scoped to this write (under the upload lock): a later request's write reports to its own.
  const stopProgress = body.hooks.durableProgress ? listenDurableProgress(upload.id, body.hooks.durableProgress) : () => {};
  try {
    if (!checksummed) return afterWrite(await handler.store.write(limiter as unknown as Readable, upload.id, upload.offset));

    spool = path.join(options.spoolDirectory, `${upload.id}-${randomBytes(6).toString('hex')}.chunk`);
    await pipeline(limiter, createWriteStream(spool));
    let wanted = expected;
    if (!wanted) {
      const trailer = req.trailers['upload-checksum'];
      if (typeof trailer !== 'string') {
        throw new AppError(400, 'MISSING_CHECKSUM_TRAILER', 'the request announced an Upload-Checksum trailer but did not send it');
      }
      wanted = parseChecksum(trailer);
      digest = all!.find(([name]) => name === wanted!.algorithm)![1];
    }
    if (!digest!.digest().equals(wanted.digest)) {
      throw new AppError(460, 'CHECKSUM_MISMATCH', `the ${wanted.algorithm} checksum of the received bytes does not match Upload-Checksum; nothing was stored`, {
        algorithm: wanted.algorithm,
      });
    }
    return await handler.store.write(createReadStream(spool), upload.id, upload.offset);
  } catch (error) {
    req.unpipe(limiter);
    if (error instanceof AppError) throw error;
    // A checksummed body ended for its rate: nothing of it was stored.
    if (tooSlow && !context.signal.aborted) return afterWrite(upload.offset);
    if (sourceError !== undefined || (error instanceof Error && error.name === 'AbortError')) throw ERRORS.ABORTED;
    // Stores wrap failures (FILE_WRITE_ERROR); exceeding the size must stay a 413.
    if (limiter.seen > maxFileSize) throw exceeded;
    throw error;
  } finally {
    stopProgress();
    stopWatching();
    req.off('end', stopWatching);
    req.off('error', onSourceError);
    context.signal.removeEventListener('abort', onAbort);
    if (spool) await rm(spool, { force: true });
  }
}

/** writeNodeBody with the hooks that bound a body of unknown length and complete it. */
async function storeNodeBody(
  handler: BodyHandler,
  body: NodeBody,
  upload: Upload,
  maxFileSize: number,
  context: CancellationContext,
  options: BodyOptions,
): Promise<number> {
  const { hooks, req } = body;
  const limit = hooks.maxEnd ? Math.min(maxFileSize, Math.max(0, (await hooks.maxEnd(upload.id)) - upload.offset)) : maxFileSize;
  const offset = await writeNodeBody(handler, body, upload, limit, context, options);
  // Only a body that arrived whole completes the upload; one ended early (aborted, too slow,
  // cut off) leaves it resumable at what arrived.
  if (hooks.completeAt && upload.size === undefined && req.complete && !context.signal.aborted) {
    await hooks.completeAt(upload.id, offset);
    // The handler finishes an upload whose offset reached its size (PATCH: onUploadFinish).
    upload.size = offset;
  }
  return offset;
}

type HandlerClass<H> = new (store: DataStore, options: ServerOptions) => H;

/**
 * Replaces the PATCH and POST handlers of a new `server` (before any listener is added: the server
 * hands its listeners to the handlers it has at `on()`) with subclasses that store a NodeBody
 * from the Node request. @tus/server exports its handler classes only through its instances.
 */
export function useNodeBodies(server: Server, options: BodyOptions): void {
  const PatchHandler = server.handlers.PATCH.constructor as HandlerClass<Handlers['PATCH']>;
  const PostHandler = server.handlers.POST.constructor as HandlerClass<Handlers['POST']>;
  class NodeBodyPatchHandler extends PatchHandler {
    protected override writeToStore(body: ReadableStream | null, upload: Upload, maxFileSize: number, context: CancellationContext): Promise<number> {
      return body instanceof NodeBody ? storeNodeBody(this, body, upload, maxFileSize, context, options) : super.writeToStore(body, upload, maxFileSize, context);
    }
  }
  class NodeBodyPostHandler extends PostHandler {
    protected override writeToStore(body: ReadableStream | null, upload: Upload, maxFileSize: number, context: CancellationContext): Promise<number> {
      return body instanceof NodeBody ? storeNodeBody(this, body, upload, maxFileSize, context, options) : super.writeToStore(body, upload, maxFileSize, context);
    }
  }
  server.handlers.PATCH = new NodeBodyPatchHandler(server.datastore, server.options);
  server.handlers.POST = new NodeBodyPostHandler(server.datastore, server.options);
}
