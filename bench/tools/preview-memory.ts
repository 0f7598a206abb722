// Peak RSS of the preview renderers (what the worker's make_previews runs) on a small and a big
// file of each kind, in the same invocation: each render runs in a fresh child process reading
// the file as a stream of 64 KiB chunks, and the child's VmHWM is its peak.
// With --worker, the whole worker instead: each file is uploaded to a ROLE=api server, then a
// fresh ROLE=worker process (disk storage, WORKER_CONCURRENCY=1) processes it (metadata, then
// previews) and its VmHWM is read once the previews exist.
// Flat memory means big ÷ small stays near 1.
//   node --import tsx bench/tools/preview-memory.ts [--worker] [--small 20] [--audio 200] [--fseq 500] [--runs 1]
// Sizes in MiB. Files go to BENCH_TMPDIR (default the OS temp dir) and are removed at the end.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { deflateSync } from 'node:zlib';
import * as tus from 'tus-js-client';
import { MiB, ROOT, createDatabase, freePort, loadAverage, median, memoryOf, ourServerEnv, removeDir, spawnNode, tempDir, waitFor, type Child } from '../support.js';

const FIXTURE_MP3 = path.join(ROOT, 'test/fixtures/audio/mm_id3v2.3.mp3');
/** The fixture's bit rate (MPEG-1 Layer III, CBR): bytes per second of its frames. */
const MP3_BYTES_PER_SEC = 128_000 / 8;

type Job = { kind: 'audio-mp3' | 'fseq-none' | 'fseq-zlib'; file: string; size: number };

async function peakRss(): Promise<number> {
  const status = await readFile('/proc/self/status', 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
}

/** The child: one render, then its peak RSS and duration as JSON on stdout. */
async function child(kind: Job['kind'], file: string, size: number): Promise<void> {
  const stream = createReadStream(file, { highWaterMark: 64 * 1024 });
  const started = performance.now();
  let facts: Record<string, unknown>;
  if (kind === 'audio-mp3') {
    const { renderAudioPeaks } = await import('../../tasks/previews/audio-peaks.js');
    const peaks = await renderAudioPeaks(stream, { format: 'mp3', durationSec: size / MP3_BYTES_PER_SEC });
    facts = { pairs: peaks.waveform.length, samplesPerPixel: peaks.waveform.samples_per_pixel };
  } else {
    const { renderFseqLightMap } = await import('../../tasks/previews/fseq-lightmap.js');
    const map = await renderFseqLightMap(stream, size);
    facts = { width: map.width, height: map.height };
  }
  process.stdout.write(`${JSON.stringify({ ms: performance.now() - started, hwm: await peakRss(), facts })}\n`);
}

/** MP3 frames of the fixture (its ID3 tags cut off) repeated to about `size` bytes. */
async function mp3File(file: string, size: number): Promise<number> {
  const bytes = readFileSync(FIXTURE_MP3);
  const id3 = 10 + ((bytes[6]! << 21) | (bytes[7]! << 14) | (bytes[8]! << 7) | bytes[9]!);
  const frames = bytes.subarray(id3, bytes.length - 128); // ID3v1 at the end
  const out = createWriteStream(file);
  let written = 0;
  while (written + frames.length <= size) {
    if (!out.write(frames)) await new Promise<void>((r) => out.once('drain', () => r()));
    written += frames.length;
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return written;
}

/**
 * An FSEQ v2 file of about `size` bytes: 4,096 channels of random values, 50 ms frames,
 * uncompressed, or zlib in 2,000 blocks (random data does not compress: the file is the size of
 * its frames). The block index is written once the blocks' lengths are known.
 */
async function fseqFile(file: string, size: number, compression: 'none' | 'zlib'): Promise<number> {
  const channels = 4096;
  const frameCount = Math.floor(size / channels);
  const blocks = compression === 'none' ? 0 : Math.min(2000, frameCount);
  const perBlock = blocks === 0 ? 0 : Math.ceil(frameCount / blocks);
  const headerLength = 32 + blocks * 8;
  const offset = Math.ceil(headerLength / 4) * 4;
  const header = Buffer.alloc(offset);
  header.write('PSEQ', 0, 'latin1');
  header.writeUInt16LE(offset, 4);
  header[7] = 2;
  header.writeUInt16LE(headerLength, 8);
  header.writeUInt32LE(channels, 10);
  header.writeUInt32LE(frameCount, 14);
  header[18] = 50;
  header[20] = ((blocks >> 4) & 0xf0) | (compression === 'zlib' ? 2 : 0);
  header[21] = blocks & 0xff;
  const handle = await open(file, 'w');
  try {
    let position = offset;
    if (compression === 'none') {
      const chunkFrames = 256;
      for (let frame = 0; frame < frameCount; frame += chunkFrames) {
        const data = randomBytes(Math.min(chunkFrames, frameCount - frame) * channels);
        await handle.write(data, 0, data.length, position);
        position += data.length;
      }
    } else {
      for (let block = 0, first = 0; first < frameCount; block++, first += perBlock) {
        const data = deflateSync(randomBytes(Math.min(perBlock, frameCount - first) * channels), { level: 1 });
        header.writeUInt32LE(first, 32 + block * 8);
        header.writeUInt32LE(data.length, 36 + block * 8);
        await handle.write(data, 0, data.length, position);
        position += data.length;
      }
    }
    await handle.write(header, 0, header.length, 0);
    return position;
  } finally {
    await handle.close();
  }
}

/** One file through the real pipeline: uploaded to the API, processed by a fresh worker. */
async function runWorker(job: Job, api: Child, env: Record<string, string>, db: Awaited<ReturnType<typeof createDatabase>>) {
  const filename = job.kind === 'audio-mp3' ? 'bench.mp3' : 'bench.fseq';
  const url = await new Promise<string>((resolve, reject) => {
    const upload = new tus.Upload(createReadStream(job.file), {
      endpoint: `${api.url}/files`,
      chunkSize: Number.POSITIVE_INFINITY,
      uploadSize: job.size,
      retryDelays: [],
      metadata: { filename },
      onSuccess: () => resolve(upload.url!),
      onError: reject,
    });
    upload.start();
  });
  const id = url.split('/').pop()!;
  const started = performance.now();
  const worker = await spawnNode({ name: 'worker', script: 'src/main.ts', cwd: ROOT, env: { ...env, ROLE: 'worker' }, port: await freePort(), readyPath: '/healthz' });
  try {
    const facts = await waitFor(
      async () => {
        const rows = await db.sql<{ kind: string; status: string; error: string | null }[]>`
          select p.kind, p.status, p.error from previews p join uploads u on u.blob_sha256 = p.sha256 where u.id = ${id}`;
        return rows.length >= 2 ? Object.fromEntries(rows.map((r) => [r.kind, r.error ?? r.status])) : null;
      },
      `the previews of ${job.kind}`,
      1_800_000,
      200,
    );
    const memory = await memoryOf(worker.pid);
    return { ms: performance.now() - started, hwm: memory?.hwm ?? 0, facts };
  } finally {
    await worker.stop();
  }
}

async function runChild(job: Job): Promise<{ ms: number; hwm: number; facts: Record<string, unknown> }> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'bench/tools/preview-memory.ts'), '--child', job.kind, job.file, String(job.size)],
    { cwd: ROOT, maxBuffer: 1024 * 1024 },
  );
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const option = (name: string, fallback: number) => {
    const at = args.indexOf(`--${name}`);
    return at >= 0 ? Number(args[at + 1]) : fallback;
  };
  const small = option('small', 20) * MiB;
  const sizes = { 'audio-mp3': option('audio', 200) * MiB, 'fseq-none': option('fseq', 500) * MiB, 'fseq-zlib': option('fseq', 500) * MiB };
  const whole = args.includes('--worker');
  // A second upload of the same bytes would be de-duplicated, previews and all: one run each.
  const runs = whole ? 1 : option('runs', 1);
  const dir = await tempDir('preview-memory');
  const db = whole ? await createDatabase() : null;
  const env = db ? { ...ourServerEnv(db.url, path.join(dir, 'data')), KIND_MAX_SIZES: 'audio=2GB,fseq=2GB', WORKER_CONCURRENCY: '1' } : {};
  const api = db ? await spawnNode({ name: 'api', script: 'src/main.ts', cwd: ROOT, env: { ...env, ROLE: 'api' }, port: await freePort(), readyPath: '/healthz' }) : null;
  const measure = (job: Job) => (api && db ? runWorker(job, api, env, db) : runChild(job));
  try {
    const what = whole ? 'the worker (metadata + previews), peak RSS per worker process' : 'preview renderers, peak RSS per child process';
    console.log(`${what} (node ${process.version}, load average ${await loadAverage()})`);
    console.log('kind        small file  big file    small peak  big peak  big ÷ small  small s  big s');
    for (const kind of Object.keys(sizes) as Job['kind'][]) {
      const make = (file: string, size: number) => (kind === 'audio-mp3' ? mp3File(file, size) : fseqFile(file, size, kind === 'fseq-zlib' ? 'zlib' : 'none'));
      const files = await Promise.all(
        [small, sizes[kind]].map(async (size, i) => {
          const file = path.join(dir, `${kind}-${i}`);
          return { kind, file, size: await make(file, size) } satisfies Job;
        }),
      );
      const results = [];
      for (const job of files) {
        const samples = [];
        for (let run = 0; run < runs; run++) samples.push(await measure(job));
        results.push({ hwm: median(samples.map((s) => s.hwm)), ms: median(samples.map((s) => s.ms)), facts: samples[0]!.facts });
      }
      const [a, b] = results as [(typeof results)[0], (typeof results)[0]];
      const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
      console.log(
        [
          kind.padEnd(11),
          mib(files[0]!.size).padEnd(11),
          mib(files[1]!.size).padEnd(11),
          mib(a.hwm).padEnd(11),
          mib(b.hwm).padEnd(9),
          `${(b.hwm / a.hwm).toFixed(2)} ×`.padEnd(12),
          (a.ms / 1000).toFixed(1).padEnd(8),
          (b.ms / 1000).toFixed(1),
        ].join(' '),
        JSON.stringify(b.facts),
      );
      for (const job of files) await removeDir(job.file);
    }
  } finally {
    await api?.stop();
    await db?.drop();
    await removeDir(dir);
  }
}

if (process.argv[2] === '--child') await child(process.argv[3] as Job['kind'], process.argv[4]!, Number(process.argv[5]));
else await main();
