/**
 * Decodes the audio no WebAssembly decoder here covers (AAC and ALAC in MP4, raw ADTS AAC) with
 * Debian's ffmpeg as a child process: the file's bytes go in, 32-bit float WAV comes out, for the
 * WAV decoder and the same peak accumulator as every other format. npm has no well-kept,
 * permissively licensed AAC decoder (the WASM ones wrap FAAD2, GPL-2.0), and ffmpeg is in Debian.
 *
 * Streams both ways with backpressure: ffmpeg reads only as fast as its output is consumed.
 * An MP4 whose `moov` box comes after its samples cannot be demuxed from a pipe (ffmpeg must seek
 * back), so such a file is copied to a temporary file first: disk, not memory.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PreviewInputError } from './errors.js';

export interface FfmpegOptions {
  /** The ffmpeg executable: a path, or a name looked up on PATH. */
  path: string;
  /** ffmpeg is stopped when it writes nothing for this long (a total limit would punish long files). */
  idleTimeoutMs?: number;
  /** Where an MP4 with its index at the end is copied; the system's temporary directory by default. */
  tempDir?: string;
  signal?: AbortSignal;
}

/** The formats (as sniffed) ffmpeg decodes here, with the demuxer forced for each. */
export const FFMPEG_FORMATS: Readonly<Record<string, 'mov' | 'aac'>> = { m4a: 'mov', mp4: 'mov', '3gp': 'mov', aac: 'aac' };

export interface FfmpegDecoding {
  /** WAV bytes (IEEE float, the source's channels and sample rate). */
  wav: AsyncIterable<Uint8Array>;
  /** The end of what ffmpeg wrote to stderr: warnings even when it succeeded. */
  diagnostics(): string;
}

/** Names the temporary directories an MP4 is copied to (one per decode). */
export const FFMPEG_TEMP_PREFIX = 'tusvault-ffmpeg-';
/** Older than this, a temporary directory outlived its decode (the worker was killed mid-copy). */
const STALE_TEMP_AFTER_MS = 3_600_000;

const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
const STDERR_KEPT = 2000;
/** Top-level boxes before `moov` or `mdat` held in memory to learn their order; more → a temporary file. */
const MAX_PREFIX = 1024 * 1024;

type InputMode = 'pipe' | 'file';

/** Reads the top-level MP4 boxes at the head of `bytes`: `pipe` when `moov` precedes `mdat`, null when undecided. */
function boxOrder(bytes: Uint8Array): InputMode | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at + 8 <= bytes.length) {
    let size = view.getUint32(at);
    const type = String.fromCharCode(bytes[at + 4]!, bytes[at + 5]!, bytes[at + 6]!, bytes[at + 7]!);
    if (type === 'moov') return 'pipe';
    if (type === 'mdat') return 'file';
    if (size === 1) {
      if (at + 16 > bytes.length) return null;
      size = Number(view.getBigUint64(at + 8));
    }
    // A box to the end of the file, or a size that cannot be: let ffmpeg see the file whole.
    if (size < 8) return 'file';
    at += size;
    if (at > MAX_PREFIX) return 'file';
  }
  return null;
}

/** Pulls the head of an MP4 until its box order is known; gives back the order and every byte, unconsumed. */
async function splitHead(source: AsyncIterable<Uint8Array>): Promise<{ mode: InputMode; bytes: AsyncIterable<Uint8Array> }> {
  const iterator = source[Symbol.asyncIterator]();
  const head: Uint8Array[] = [];
  let held = Buffer.alloc(0);
  let mode: InputMode | null = null;
  let ended = false;
  while (mode === null) {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      break;
    }
    head.push(next.value);
    held = Buffer.concat([held, next.value]);
    mode = boxOrder(held);
    if (mode === null && held.length > MAX_PREFIX) mode = 'file';
  }
  async function* bytes() {
    yield* head;
    if (ended) return;
    while (true) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { mode: mode ?? 'pipe', bytes: bytes() };
}

/**
 * Removes the temporary directories of decodes that never cleaned up (a worker killed while it
 * copied an MP4), older than an hour so a running decode of another worker keeps its own.
 * Returns the paths removed; a directory gone meanwhile is no error.
 */
export async function removeStaleFfmpegTemp(
  options: { tempDir?: string; olderThanMs?: number; now?: Date } = {},
): Promise<string[]> {
  const dir = options.tempDir ?? tmpdir();
  const limit = (options.now ?? new Date()).getTime() - (options.olderThanMs ?? STALE_TEMP_AFTER_MS);
  const removed: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isDirectory() || !entry.name.startsWith(FFMPEG_TEMP_PREFIX)) continue;
    const full = path.join(dir, entry.name);
    const info = await stat(full).catch(() => null);
    if (!info || info.mtimeMs > limit) continue;
    await rm(full, { recursive: true, force: true });
    removed.push(full);
  }
  return removed;
}

/** Runs `ffmpeg -version`: its first line, or null when it cannot be run. */
export async function ffmpegVersion(executable: string): Promise<string | null> {
  return new Promise((resolve) => {
    const child = spawn(executable, ['-hide_banner', '-version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      if (out.length < 4096) out += text;
    });
    child.on('error', () => resolve(null));
    child.on('close', (code) => resolve(code === 0 ? (out.split('\n')[0] ?? '').trim() || 'ffmpeg' : null));
  });
}

/** Decodes the first audio stream of a `format` file (see FFMPEG_FORMATS) streamed in `source`. */
export function decodeWithFfmpeg(source: AsyncIterable<Uint8Array>, format: string, options: FfmpegOptions): FfmpegDecoding {
  const known = FFMPEG_FORMATS[format];
  if (!known) throw new PreviewInputError('AUDIO_FORMAT_UNSUPPORTED', `ffmpeg is not used for ${format} audio here`);
  const demuxer: 'mov' | 'aac' = known;
  let stderr = '';
  let spooledAs: string | null = null;
  // The last lines, without the temporary file's path or ffmpeg's object addresses.
  const diagnostics = () =>
    stderr
      .replaceAll(spooledAs ?? '\0', 'input')
      .replace(/ @ 0x[0-9a-f]+\]/g, ']')
      .trim()
      .split('\n')
      .slice(-4)
      .join('; ');

  async function* wav(): AsyncGenerator<Uint8Array> {
    const { mode, bytes } = demuxer === 'mov' ? await splitHead(source) : { mode: 'pipe' as const, bytes: source };
    let spoolDir: string | null = null;
    let child: ChildProcess | null = null;
    let idle: NodeJS.Timeout | undefined;
    let timedOut = false;
    const onAbort = () => child?.kill('SIGKILL');
    try {
      let input = 'pipe:0';
      if (mode === 'file') {
        spoolDir = await mkdtemp(path.join(options.tempDir ?? tmpdir(), FFMPEG_TEMP_PREFIX));
        input = spooledAs = path.join(spoolDir, `input.${format}`);
        await pipeline(Readable.from(bytes), createWriteStream(input), { signal: options.signal });
      }
      // The demuxer and protocol are forced: content cannot steer ffmpeg to playlists or URLs.
      const args = [
        '-nostdin', '-hide_banner', '-loglevel', 'error',
        '-protocol_whitelist', mode === 'file' ? 'file' : 'pipe',
        '-f', demuxer, '-i', input,
        '-map', '0:a:0', '-vn', '-sn', '-dn', '-map_metadata', '-1',
        '-c:a', 'pcm_f32le', '-f', 'wav', 'pipe:1',
      ];
      const stdio: StdioOptions = [mode === 'pipe' ? 'pipe' : 'ignore', 'pipe', 'pipe'];
      const running: ChildProcess = spawn(options.path, args, { stdio });
      child = running;
      const started = new Promise<void>((resolve, reject) => {
        running.once('spawn', resolve);
        running.once('error', reject);
      });
      const closed = new Promise<number | null>((resolve) => running.once('close', (code: number | null) => resolve(code)));
      running.stderr!.setEncoding('utf8').on('data', (text: string) => {
        stderr = (stderr + text).slice(-STDERR_KEPT);
      });
      try {
        await started;
      } catch (error) {
        throw new PreviewInputError('AUDIO_DECODER_UNAVAILABLE', `ffmpeg (${options.path}) cannot be run: ${(error as Error).message}`, { cause: error });
      }
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.signal?.aborted) onAbort();

      // ffmpeg closing its stdin early (it had enough, or gave up) is not an error; its exit says how it went.
      let feedError: unknown = null;
      const fed =
        mode === 'pipe'
          ? pipeline(Readable.from(bytes), running.stdin!).catch((error: unknown) => {
              if ((error as NodeJS.ErrnoException).code !== 'EPIPE' && (error as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') feedError = error;
            })
          : Promise.resolve();

      const idleMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
      const arm = () => {
        clearTimeout(idle);
        idle = setTimeout(() => {
          timedOut = true;
          running.kill('SIGKILL');
        }, idleMs);
      };
      arm();
      for await (const chunk of running.stdout!) {
        // Only ffmpeg's silence counts, not the time the reader takes with a chunk.
        clearTimeout(idle);
        yield chunk as Buffer;
        arm();
      }
      clearTimeout(idle);
      const code = await closed;
      // A failing source ends ffmpeg's input, so its error is known by now: the storage failed, not the content (retried).
      if (feedError) throw feedError;
      if (timedOut) throw new Error(`ffmpeg wrote nothing for ${idleMs / 1000} s and was stopped`);
      if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
      if (code !== 0) {
        throw new PreviewInputError('AUDIO_UNDECODABLE', `ffmpeg cannot decode the ${format} audio (exit ${code ?? 'signal'})${stderr ? `: ${diagnostics()}` : ''}`);
      }
      await fed;
      if (feedError) throw feedError;
    } finally {
      clearTimeout(idle);
      options.signal?.removeEventListener('abort', onAbort);
      // The consumer stopped early, or something failed: never leave ffmpeg running.
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (spoolDir) await rm(spoolDir, { recursive: true, force: true });
    }
  }
  return { wav: wav(), diagnostics };
}
