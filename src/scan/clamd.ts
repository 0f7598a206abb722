// The Scanner backed by clamd, spoken to over its socket protocol (TCP or a Unix socket):
// `zINSTREAM`, then the bytes as length-prefixed chunks, then a zero-length chunk; clamd answers
// `stream: OK`, `stream: <signature> FOUND` or `<reason> ERROR`.
//
// Why not the `clamscan` npm package (2.4.0), which the issue names: both of its stream APIs were
// tried against a real clamd, and neither can be used as is.
//   - scanStream() writes every chunk into the socket without looking at backpressure
//     (`stream.on('data') → transform.write()`, `transform.on('data') → socket.write()`), so when
//     clamd reads slower than the disk or S3 delivers (a remote or busy clamd), the file piles up
//     in this process's memory (a slow clamd stand-in showed most of a 30 MB file queued in the
//     socket). It also sends no
//     `zINSTREAM` at all for an empty stream (clamd answers `UNKNOWN COMMAND`) and never destroys
//     the source stream on failure (an S3 response would stay open).
//   - passthrough() honours backpressure, but never finishes for an empty stream (no socket is
//     opened, its flush callback is never called: the scan hangs), writes the terminating
//     zero-length chunk to the socket outside its own pipe (correct only because that pipe has
//     usually drained by then), and reports through events while forwarding every byte to a
//     consumer we would have to discard them into.
// (Measured against clamd 1.4 with test/support/clamd.ts.)
// The protocol is tiny, so it is implemented here directly: backpressure, a bounded reply, an
// inactivity timeout, the source destroyed on every exit, and clear errors (ScannerUnavailableError
// to retry, UnscannableError for a file over clamd's StreamMaxLength).
import net from 'node:net';
import type { Readable } from 'node:stream';
import { ScannerUnavailableError, UnscannableError, type Scanner, type ScanVerdict } from './scanner.js';

export interface ClamdScannerOptions {
  host?: string;
  /** TCP port (default 3310) when `host` is used. */
  port?: number;
  /** Path of clamd's Unix socket (LocalSocket); takes precedence over host/port. */
  socket?: string;
  /** No progress on the connection (connecting, sending, waiting for the verdict) for this long fails the scan. */
  timeoutMs: number;
  /**
   * clamd's StreamMaxLength, when known: larger files are refused up front without sending any
   * bytes. Unknown (null) is fine too: clamd then refuses the stream itself once it passes the limit.
   */
  maxStreamBytes?: number | null;
}

/** clamd reads chunks of any size; we keep them small so a chunk never holds much memory. */
const MAX_CHUNK = 256 * 1024;
/** A verdict is one short line; anything longer is not clamd talking. */
const MAX_REPLY = 64 * 1024;

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * Resolves after the event loop has polled for I/O at least once (a single setImmediate may run
 * in the same loop iteration as the I/O callback that led here, before any new poll).
 */
async function pollOnce(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/** One request/response conversation with clamd on a fresh connection. */
class ClamdConnection {
  /** clamd's NUL-terminated answer; rejects with ScannerUnavailableError when there is none. */
  readonly reply: Promise<string>;
  private settled = false;
  private waiters: Array<() => void> = [];

  private constructor(
    private readonly socket: net.Socket,
    where: string,
    timeoutMs: number,
  ) {
    this.reply = new Promise<string>((resolve, reject) => {
      let received = Buffer.alloc(0);
      const settle = (settleWith: () => void) => {
        if (this.settled) return;
        this.settled = true;
        settleWith();
        for (const wake of this.waiters.splice(0)) wake();
      };
      const fail = (message: string, cause?: unknown) => settle(() => reject(new ScannerUnavailableError(message, { cause })));
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        const end = received.indexOf(0);
        if (end >= 0) settle(() => resolve(received.subarray(0, end).toString('utf8').trim()));
        else if (received.length > MAX_REPLY) fail(`clamd at ${where} sent an overlong reply`);
      });
      // An answer cut short by the connection ending still says something.
      socket.on('end', () => {
        if (received.length > 0) settle(() => resolve(received.toString('utf8').trim()));
      });
      socket.on('close', () => fail(`clamd at ${where} closed the connection without a reply`));
      socket.on('error', (error: NodeJS.ErrnoException) =>
        fail(`connection to clamd at ${where} failed: ${error.code ?? error.message}`, error),
      );
      socket.on('timeout', () => fail(`clamd at ${where} made no progress for ${timeoutMs} ms`));
      socket.on('drain', () => {
        for (const wake of this.waiters.splice(0)) wake();
      });
    });
    // Awaited by the scan; a failure nobody awaits yet must not count as unhandled.
    this.reply.catch(() => {});
  }

  static open(target: net.NetConnectOpts, where: string, timeoutMs: number): Promise<ClamdConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(target);
      socket.setTimeout(timeoutMs);
      const connection = new ClamdConnection(socket, where, timeoutMs);
      socket.once('connect', () => resolve(connection));
      connection.reply.catch((error: unknown) => {
        socket.destroy();
        reject(error);
      });
    });
  }

  /**
   * Sends bytes (one INSTREAM chunk: its length and its data), waiting while the socket's buffer
   * is full: this backpressure keeps a file from piling up in memory. False once clamd answered or
   * the connection failed.
   *
   * Each send first lets the event loop poll the socket. clamd answers early when it refuses a
   * stream (`INSTREAM size limit exceeded`) and closes the connection; writing on after that fails
   * with EPIPE/ECONNRESET, and Node then destroys the socket before the answer is read. Reading
   * between chunks catches the answer in nearly every case; knowing the limit up front
   * (maxStreamBytes) avoids the question altogether.
   */
  async send(...buffers: Buffer[]): Promise<boolean> {
    await pollOnce();
    if (this.settled) return false;
    this.socket.cork();
    for (const buffer of buffers) this.socket.write(buffer);
    this.socket.uncork();
    if (!this.socket.writableNeedDrain) return !this.settled;
    await new Promise<void>((resolve) => this.waiters.push(resolve));
    return !this.settled;
  }

  close(): void {
    this.socket.destroy();
  }
}

export function createClamdScanner(options: ClamdScannerOptions): Scanner {
  const target: net.NetConnectOpts = options.socket
    ? { path: options.socket }
    : { host: options.host ?? '127.0.0.1', port: options.port ?? 3310 };
  const where = options.socket ? `unix:${options.socket}` : `${options.host ?? '127.0.0.1'}:${options.port ?? 3310}`;
  const limit = options.maxStreamBytes ?? null;

  const tooLarge = (size: number, detail: string) =>
    new UnscannableError(
      `the file (${mib(size)}) is larger than the virus scanner accepts (${detail}), so it cannot be scanned; ` +
        `raise StreamMaxLength in clamd.conf${limit !== null ? ' and CLAMAV_STREAM_MAX_LENGTH' : ''} to scan files this large`,
    );

  function verdictOf(reply: string, size: number, sent: number): ScanVerdict {
    if (reply === 'stream: OK') return { status: 'clean', signature: null };
    const found = /^stream: (.+) FOUND$/.exec(reply);
    if (found) return { status: 'infected', signature: found[1]! };
    if (/size limit exceeded/i.test(reply)) throw tooLarge(size, `clamd refused the stream after ${mib(sent)}: "${reply}"`);
    if (/ERROR$/.test(reply)) throw new ScannerUnavailableError(`clamd at ${where} could not scan the stream: ${reply}`);
    throw new ScannerUnavailableError(`unexpected reply from clamd at ${where}: ${JSON.stringify(reply.slice(0, 200))}`);
  }

  return {
    async scan(stream: Readable, size: number): Promise<ScanVerdict> {
      let connection: ClamdConnection | null = null;
      let sent = 0;
      try {
        if (limit !== null && size > limit) throw tooLarge(size, `StreamMaxLength is ${mib(limit)}`);
        connection = await ClamdConnection.open(target, where, options.timeoutMs);
        let sending = await connection.send(Buffer.from('zINSTREAM\0'));
        for await (const chunk of stream as AsyncIterable<Buffer | string>) {
          const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          for (let at = 0; at < bytes.length && sending; at += MAX_CHUNK) {
            const part = bytes.subarray(at, at + MAX_CHUNK);
            if (limit !== null && sent + part.length > limit) throw tooLarge(Math.max(size, sent + part.length), `StreamMaxLength is ${mib(limit)}`);
            const header = Buffer.alloc(4);
            header.writeUInt32BE(part.length);
            sending = await connection.send(header, part);
            sent += part.length;
          }
          // clamd answered early (it refused the stream) or the connection is gone.
          if (!sending) break;
        }
        if (sending) await connection.send(Buffer.alloc(4));
        let reply: string;
        try {
          reply = await connection.reply;
        } catch (error) {
          const code = ((error as Error).cause as NodeJS.ErrnoException | undefined)?.code;
          if (sent > 0 && (code === 'EPIPE' || code === 'ECONNRESET')) {
            throw new ScannerUnavailableError(
              `clamd at ${where} closed the connection after receiving ${mib(sent)} of ${mib(size)} (${code}); ` +
                "if the file is larger than clamd's StreamMaxLength, set CLAMAV_STREAM_MAX_LENGTH to that limit so such files are refused up front",
              { cause: error },
            );
          }
          throw error;
        }
        return verdictOf(reply, size, sent);
      } finally {
        // Whatever happened, neither the connection nor the source (an S3 response) stays open.
        connection?.close();
        if (!stream.destroyed) stream.destroy();
      }
    },

    async ping(): Promise<void> {
      const connection = await ClamdConnection.open(target, where, Math.min(options.timeoutMs, 10_000));
      try {
        await connection.send(Buffer.from('zPING\0'));
        const reply = await connection.reply;
        if (reply !== 'PONG') throw new ScannerUnavailableError(`clamd at ${where} answered PING with ${JSON.stringify(reply.slice(0, 100))}`);
      } finally {
        connection.close();
      }
    },
  };
}
