// Shared pieces of the reliability suite: sizes (CI default or RELIABILITY_SCALE=full), a patient
// tus client that records what it saw, memory sampling of a child process, byte-identity checks.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import * as tus from 'tus-js-client';
import type { ChildServer } from '../support/server.js';
import { CHECKSUM_ALGORITHMS } from '../../src/tus/protocol.js';

export const KiB = 1024;
export const MiB = 1024 * 1024;

/**
 * `RELIABILITY_SCALE=full` runs the sizes of the issue (10 × 50 MiB crash uploads, 20 files of
 * 5–50 MiB over the flaky network, ...); anything else runs the CI sizes, which exercise the same
 * faults on less data so the whole suite stays within a few minutes on two cores.
 */
export const FULL = process.env.RELIABILITY_SCALE === 'full';

export const SCALE = {
  crash: { files: 10, size: FULL ? 50 * MiB : 8 * MiB, chunkSize: 1 * MiB, kills: FULL ? 5 : 3 },
  flaky: {
    files: 20,
    minSize: FULL ? 5 * MiB : 512 * KiB,
    maxSize: FULL ? 50 * MiB : 4 * MiB,
    parallel: 4,
    // The mobile link's speed outside its bad spells, per connection and direction.
    bytesPerSecond: FULL ? 4 * MiB : 1 * MiB,
  },
  // Under the shared clamd's StreamMaxLength (32 MiB, test/support/global-setup.ts): every blob gets a verdict.
  worker: { files: 4, size: FULL ? 30 * MiB : 6 * MiB, readBytesPerSecond: FULL ? 8 * MiB : 1 * MiB },
  postgres: { files: 6, size: FULL ? 32 * MiB : 4 * MiB, bytesPerSecond: FULL ? 4 * MiB : 768 * KiB },
  storage: { files: 4, size: FULL ? 40 * MiB : 12 * MiB, bytesPerSecond: FULL ? 8 * MiB : 3 * MiB },
};

/** A seed for the suite's randomness: RELIABILITY_SEED replays a run. */
export function suiteSeed(): number {
  const given = Number(process.env.RELIABILITY_SEED);
  return Number.isInteger(given) && given > 0 ? given : Math.floor(Math.random() * 2 ** 31);
}

/** Retry delays for clients that must outlast a restart (~45 s of retries without progress). */
export const PATIENT_RETRIES = [0, 300, 600, 1000, 1000, 1500, 2000, 2000, 3000, 3000, 3000, 4000, 5000, 5000, 5000, 5000];

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Pseudo-random bytes from a seed (fast, reproducible, incompressible enough for S3 and dedup). */
export function seededBytes(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = (seed >>> 0) || 1;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  for (; i < size; i++) out[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  return out;
}

export interface TrackedUpload {
  data: Buffer;
  filename: string;
  /** The upload URL once created. */
  url: string | null;
  /** Highest offset the server acknowledged. */
  acknowledged: number;
  /** Every HTTP status the client got, by method ("PATCH 204"). */
  statuses: string[];
  /** Requests that failed without a response (connection refused, reset, ...). */
  networkErrors: number;
  posts: number;
  /** HEAD answers reporting less than an offset the server had acknowledged (lost bytes). */
  regressions: string[];
  done: Promise<string>;
  instance: tus.Upload;
}

export interface TrackOptions {
  endpoint: string;
  filename: string;
  chunkSize?: number;
  retryDelays?: number[];
  /** Send `Upload-Checksum` (this algorithm) with every PATCH, as careful clients do. */
  checksum?: 'sha1' | 'md5' | 'sha256' | 'crc32';
  filetype?: string;
  headers?: Record<string, string>;
  /** tus-js-client's IETF resumable upload draft modes (interop 5 and 6) instead of tus. */
  protocol?: 'ietf-draft-03' | 'ietf-draft-05';
}

function checksumOf(algorithm: string, data: Uint8Array): string {
  if (algorithm === 'crc32') {
    const value = crc32(data);
    const out = Buffer.alloc(4);
    out.writeUInt32BE(value >>> 0);
    return out.toString('base64');
  }
  return createHash(CHECKSUM_ALGORITHMS[algorithm]!.node).update(data).digest('base64');
}

const active = new Set<tus.Upload>();

/** Stops every upload still running (a failed test must not leave clients retrying behind it). */
export async function abortUploads(): Promise<void> {
  const running = [...active];
  active.clear();
  await Promise.all(running.map((upload) => upload.abort().catch(() => {})));
}

/** Starts a tus-js-client upload that retries patiently and records what happened. */
export function trackedUpload(data: Buffer, options: TrackOptions): TrackedUpload {
  const tracked = {
    data,
    filename: options.filename,
    url: null,
    acknowledged: 0,
    statuses: [],
    networkErrors: 0,
    posts: 0,
    regressions: [],
  } as unknown as TrackedUpload;
  const chunkSize = options.chunkSize ?? Number.POSITIVE_INFINITY;
  tracked.done = new Promise<string>((resolve, reject) => {
    const instance = new tus.Upload(data, {
      endpoint: options.endpoint,
      chunkSize,
      retryDelays: options.retryDelays ?? PATIENT_RETRIES,
      metadata: { filename: options.filename, ...(options.filetype ? { filetype: options.filetype } : {}) },
      headers: options.headers ?? {},
      ...(options.protocol ? { protocol: options.protocol } : {}),
      storeFingerprintForResuming: false,
      onUploadUrlAvailable: () => {
        tracked.url = instance.url;
      },
      onBeforeRequest: (req) => {
        const method = req.getMethod();
        if (method === 'POST') tracked.posts++;
        if (method === 'PATCH' && options.checksum) {
          const offset = Number(req.getHeader('Upload-Offset'));
          const end = Math.min(data.length, offset + chunkSize);
          req.setHeader('Upload-Checksum', `${options.checksum} ${checksumOf(options.checksum, data.subarray(offset, end))}`);
        }
      },
      onAfterResponse: (req, res) => {
        tracked.statuses.push(`${req.getMethod()} ${res.getStatus()}`);
        const offset = res.getHeader('Upload-Offset');
        // A HEAD answers 200 in tus, 204 in the IETF draft.
        if (req.getMethod() === 'HEAD' && (res.getStatus() === 200 || res.getStatus() === 204) && offset !== undefined && Number(offset) < tracked.acknowledged) {
          tracked.regressions.push(`HEAD offset ${offset} after ${tracked.acknowledged} was acknowledged`);
        }
      },
      onShouldRetry: (error) => {
        const status = error.originalResponse?.getStatus() ?? 0;
        if (status === 0) tracked.networkErrors++;
        if (process.env.RELIABILITY_DEBUG) console.log(`[retry] ${options.filename} ${error.message.split('\n')[0]}`);
        return status === 0 || status >= 500 || status === 409 || status === 423;
      },
      onChunkComplete: (_size, accepted) => {
        tracked.acknowledged = Math.max(tracked.acknowledged, accepted);
      },
      onSuccess: () => resolve(instance.url!),
      onError: (error) =>
        reject(
          Object.assign(error, {
            message: `${error.message}\n  ${options.filename}: acknowledged ${tracked.acknowledged}/${data.length}, ` +
              `${tracked.networkErrors} network errors, statuses: ${tracked.statuses.slice(-30).join(', ')}`,
          }),
        ),
    });
    tracked.instance = instance;
    active.add(instance);
    instance.start();
  });
  tracked.done.then(
    () => active.delete(tracked.instance),
    () => active.delete(tracked.instance),
  );
  return tracked;
}

export function idOf(url: string): string {
  return new URL(url).pathname.split('/').pop()!;
}

/** SHA-256 of a file's bytes as the files API serves them (streamed, never buffered whole). */
export async function downloadSha256(baseUrl: string, id: string): Promise<{ status: number; sha256: string; size: number }> {
  const response = await fetch(`${baseUrl}/api/files/${id}/content`);
  const hash = createHash('sha256');
  let size = 0;
  if (response.body) {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      size += chunk.length;
    }
  }
  return { status: response.status, sha256: hash.digest('hex'), size };
}

/** Resident set size of a process, from /proc (bytes). */
export async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

export interface RssSampler {
  samples: Array<{ at: number; rss: number; mark: number }>;
  /** A number stored with the following samples (e.g. bytes uploaded so far). */
  mark(value: number): void;
  max(from?: (s: { mark: number }) => boolean): number;
  stop(): void;
}

export function sampleRss(pid: number, intervalMs = 200): RssSampler {
  let mark = 0;
  const samples: RssSampler['samples'] = [];
  const timer = setInterval(() => {
    rssOf(pid).then(
      (rss) => samples.push({ at: Date.now(), rss, mark }),
      () => {},
    );
  }, intervalMs);
  return {
    samples,
    mark: (value) => {
      mark = value;
    },
    max: (from = () => true) => Math.max(0, ...samples.filter(from).map((s) => s.rss)),
    stop: () => clearInterval(timer),
  };
}

/** Every file (not directory) under `dir`, relative paths; [] when it does not exist. */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(current: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(current, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) await walk(full);
      else out.push(path.relative(dir, full));
    }
  }
  await walk(dir);
  return out.sort();
}

/** Logs a step's duration, so slow runs show where the time went. */
export async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    console.log(`[reliability] ${label}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
}

export function formatMiB(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

/**
 * Keeps the end of a child server's log in the temp directory (for a failed run), and when the
 * child died on its own prints it (call from afterAll).
 */
export function reportIfDied(name: string, server: ChildServer | undefined): void {
  const child = server?.process;
  if (!child) return;
  const file = path.join(os.tmpdir(), `tusvault-reliability-${name.replace(/[^a-z0-9]+/gi, '-')}.log`);
  writeFileSync(file, server!.output());
  if ((child.exitCode === null && child.signalCode === null) || child.signalCode === 'SIGKILL') return;
  console.log(`[reliability] ${name} exited by itself (${child.exitCode ?? child.signalCode}); its log ends with:\n${server!.output().slice(-8000)}`);
}

export const TUS_HEADERS = { 'Tus-Resumable': '1.0.0' };

/** What the server answered: status, error code of a JSON error body, Retry-After. */
export interface OutageAnswer {
  status: number;
  code: string | null;
  retryAfter: string | null;
  body: unknown;
}

async function answerOf(response: Response): Promise<OutageAnswer> {
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  const code = (body as { error?: { code?: string } } | null)?.error?.code ?? null;
  return { status: response.status, code, retryAfter: response.headers.get('retry-after'), body };
}

const metadata = (filename: string) => `filename ${Buffer.from(filename).toString('base64')}`;

/** The requests asked while a dependency is down; `someId` is an upload that exists. */
const OUTAGE_PROBES = {
  healthz: (base: string) => fetch(`${base}/healthz`),
  readyz: (base: string) => fetch(`${base}/readyz`),
  create: (base: string) => fetch(`${base}/files`, { method: 'POST', headers: { ...TUS_HEADERS, 'Upload-Length': '10', 'Upload-Metadata': metadata('down.bin') } }),
  createWithBody: (base: string) =>
    fetch(`${base}/files`, {
      method: 'POST',
      headers: { ...TUS_HEADERS, 'Upload-Length': '10', 'Content-Type': 'application/offset+octet-stream', 'Upload-Metadata': metadata('down2.bin') },
      body: Buffer.alloc(10, 1),
    }),
  head: (base: string, someId: string) => fetch(`${base}/files/${someId}`, { method: 'HEAD', headers: TUS_HEADERS }),
  patch: (base: string, someId: string) =>
    fetch(`${base}/files/${someId}`, {
      method: 'PATCH',
      headers: { ...TUS_HEADERS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      body: Buffer.alloc(10),
    }),
  record: (base: string, someId: string) => fetch(`${base}/api/files/${someId}`),
  list: (base: string) => fetch(`${base}/api/files`),
};

export type OutageProbe = keyof typeof OUTAGE_PROBES;

/** Asks the chosen probes one after another (only those safe while clients upload `someId`). */
export async function probeOutage<P extends OutageProbe>(base: string, someId: string, probes: readonly P[]): Promise<Record<P, OutageAnswer>> {
  const answers = {} as Record<P, OutageAnswer>;
  for (const name of probes) answers[name] = await answerOf(await OUTAGE_PROBES[name](base, someId));
  return answers;
}
