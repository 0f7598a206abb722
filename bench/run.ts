// `npm run bench`: throughput, many small files, processing latency, memory and the S3 path of
// our server against a raw Node sink and bare @tus/server, all on loopback. Every server runs
// as its own child process (own event loop, own RSS); the clients run here or as curl.
//
//   npm run bench                         full run (≈15 min on 2 cores)
//   npm run bench -- --quick              smaller files, for iterating (≈3 min)
//   npm run bench -- --only throughput,small   sections: throughput small processing memory s3, and
//                                         investigate (not run by default: the fast paths of
//                                         bench/experiments/fast-path.ts on bare @tus/server, one at a time)
//   npm run bench -- --runs 5             runs per measurement (median; at least 3)
//   npm run bench -- --server-root DIR    run "ours" from another checkout (e.g. a patched worktree)
//   npm run bench -- --ours-env K=V       extra environment for "ours" (repeatable), e.g. UV_THREADPOOL_SIZE=16
//   npm run bench -- --db-setting K=V     ALTER DATABASE … SET K = V on every fresh database (diagnostics,
//                                         e.g. synchronous_commit=off to see what commit fsyncs cost)
//   npm run bench -- --compare-root DIR   also run "ours (patched)" from DIR in throughput, small and
//                                         memory, so a proposed change is compared in the same invocation
//
// Needs Postgres at DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test; a fresh
// database per server start), curl, sha256sum, moto_server (s3 section). Temp files go under
// BENCH_TMPDIR (default the OS temp dir) and are removed at the end.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { curlUpload, directUploadFile, splitFile, tusUploadBuffer, tusUploadFile, tusUploadMany, type UploadResult } from './clients.js';
import { Report, type Target } from './report.js';
import {
  GiB,
  MiB,
  ROOT,
  allProcessed,
  createDatabase,
  describeMachine,
  buildOnce,
  freePort,
  memoryOf,
  ourServerEnv,
  percentile,
  randomFile,
  removeDir,
  cpuSecondsOf,
  postgresCpuByPid,
  postgresCpuSince,
  loadAverage,
  sleep,
  spawnNode,
  syncDisks,
  tempDir,
  waitFor,
  type BenchDatabase,
  type Child,
} from './support.js';

const execFileP = promisify(execFile);

// ---------------------------------------------------------------------------------------------
// Options

const SECTIONS = ['throughput', 'small', 'processing', 'memory', 's3', 'investigate'] as const;
type Section = (typeof SECTIONS)[number];

function parseArgs(argv: string[]) {
  let quick = false;
  // investigate is a diagnostic (bare @tus/server variants); it runs only when asked for.
  let only: Set<Section> = new Set(SECTIONS.filter((s) => s !== 'investigate'));
  let runs: number | undefined;
  let serverRoot = ROOT;
  let compareRoot: string | undefined;
  const oursEnv: Record<string, string> = {};
  const dbSettings: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') quick = true;
    else if (a === '--only') {
      const names = value().split(',').map((s) => s.trim()).filter(Boolean);
      for (const n of names) if (!(SECTIONS as readonly string[]).includes(n)) throw new Error(`unknown section ${n}; one of ${SECTIONS.join(', ')}`);
      only = new Set(names as Section[]);
    } else if (a === '--runs') runs = Math.max(3, Number(value()));
    else if (a === '--server-root') serverRoot = path.resolve(value());
    else if (a === '--compare-root') compareRoot = path.resolve(value());
    else if (a === '--db-setting') {
      const [k, ...v] = value().split('=');
      if (!/^[a-z_]+$/.test(k!)) throw new Error(`--db-setting ${k}: expected a PostgreSQL setting name`);
      dbSettings[k!] = v.join('=');
    } else if (a === '--ours-env') {
      const [k, ...v] = value().split('=');
      oursEnv[k!] = v.join('=');
    }
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: npm run bench -- [--quick] [--only a,b] [--runs N] [--server-root DIR] [--compare-root DIR]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return { quick, only, runs: runs ?? 3, serverRoot, compareRoot, oursEnv, dbSettings };
}

const options = parseArgs(process.argv.slice(2));
const Q = options.quick;
const SIZES = {
  large: Q ? 128 * MiB : 1 * GiB,
  chunks: [64 * MiB, 8 * MiB],
  smallCount: Q ? 200 : 2000,
  smallSize: 64 * 1024,
  smallConcurrency: 32,
  processingSmall: Q ? 10 : 50,
  memory: Q ? [64 * MiB, 256 * MiB] : [512 * MiB, 2 * GiB],
  s3: Q ? 32 * MiB : 256 * MiB,
  investigate: Q ? 128 * MiB : 512 * MiB,
};
const RUNS = options.runs;

const log = (text: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
const mib = (bytes: number) => `${Math.round(bytes / MiB)} MiB`;
const sizeName = (bytes: number) => (bytes >= GiB && bytes % GiB === 0 ? `${bytes / GiB} GiB` : mib(bytes));
const mbps = (bytes: number, ms: number) => bytes / MiB / (ms / 1000);
const rotate = <T>(items: T[], by: number) => items.map((_, i) => items[(i + by) % items.length]!);

// ---------------------------------------------------------------------------------------------
// Subjects: the servers under test

interface Subject {
  name: string;
  endpoint: string;
  child: Child;
  /** After an upload: wait for processing (ours), free the disk; returns finish-to-ready ms (ours). */
  after(result: UploadResult): Promise<number | null>;
  stop(): Promise<void>;
}

async function clearDir(dir: string): Promise<void> {
  for (const entry of await readdir(dir).catch(() => [] as string[])) await rm(path.join(dir, entry), { recursive: true, force: true });
}

async function startRawSink(name: string, fsync: boolean): Promise<Subject> {
  const dir = await tempDir(name);
  const child = await spawnNode({
    name,
    script: path.join(ROOT, 'bench/baselines/raw-sink.ts'),
    build: await buildOnce(ROOT),
    env: { DIR: dir, FSYNC: fsync ? '1' : '0' },
    port: await freePort(),
    readyPath: '/files',
  });
  return {
    name,
    endpoint: `${child.url}/files`,
    child,
    after: async () => {
      await clearDir(dir);
      return null;
    },
    stop: async () => {
      await child.stop();
      await removeDir(dir);
    },
  };
}

async function startBareTus(name: string, env: Record<string, string> = {}): Promise<Subject> {
  const dir = await tempDir(name);
  const child = await spawnNode({
    name,
    script: path.join(ROOT, 'bench/baselines/bare-tus.ts'),
    build: await buildOnce(ROOT),
    env: { STORE: 'file', DIR: dir, ...env },
    port: await freePort(),
    readyPath: '/files',
  });
  return {
    name,
    endpoint: `${child.url}/files`,
    child,
    after: async () => {
      await clearDir(dir);
      return null;
    },
    stop: async () => {
      await child.stop();
      await removeDir(dir);
    },
  };
}

const FINAL = ['ready', 'rejected', 'infected', 'failed', 'expired', 'deleted'];

interface Ours extends Subject {
  db: BenchDatabase;
  /** Polls Postgres until the upload is final; ms from the last response to the status change. */
  waitReady(result: UploadResult, intervalMs?: number): Promise<number>;
  waitAllSettled(): Promise<void>;
}

async function startOurs(name: string, extraEnv: Record<string, string> = {}, root = options.serverRoot): Promise<Ours> {
  const db = await createDatabase();
  for (const [k, v] of Object.entries(options.dbSettings)) {
    await db.sql.unsafe(`alter database "${new URL(db.url).pathname.slice(1)}" set ${k} = '${v.replace(/'/g, "''")}'`);
  }
  const dataDir = await tempDir(name);
  const child = await spawnNode({
    name,
    script: 'src/main.ts',
    cwd: root,
    build: await buildOnce(root),
    env: {
      ...ourServerEnv(db.url, dataDir),
      ...(root === options.serverRoot ? options.oursEnv : {}),
      ...extraEnv,
    },
    port: await freePort(),
    readyPath: '/healthz',
  });
  const waitReady = async (result: UploadResult, intervalMs = 5) => {
    const id = new URL(result.url).pathname.split('/').pop()!;
    const row = await waitFor(
      async () => {
        const [r] = await db.sql<{ status: string }[]>`select status from uploads where id = ${id}`;
        return r && FINAL.includes(r.status) ? r : null;
      },
      `upload ${id} to be processed`,
      600_000,
      intervalMs,
    );
    const seen = performance.now();
    if (row.status !== 'ready') throw new Error(`upload ${id} ended ${row.status}, not ready:\n${child.output().slice(-3000)}`);
    return seen - result.endedAt;
  };
  return {
    name,
    endpoint: `${child.url}/files`,
    child,
    db,
    waitReady,
    waitAllSettled: async () => {
      // ROLE=api (diagnostics: the request path alone) has no worker: nothing will settle.
      if ({ ...options.oursEnv, ...extraEnv }.ROLE === 'api') return;
      await allProcessed(db, 'all uploads to be processed', 900_000);
    },
    after: (result) => waitReady(result),
    stop: async () => {
      await child.stop();
      await db.drop();
      await removeDir(dataDir);
    },
  };
}

/** ms between completed_at and ready_at as Postgres recorded them. */
async function dbFinishToReady(ours: Ours, urls: string[]): Promise<number[]> {
  const ids = urls.map((u) => new URL(u).pathname.split('/').pop()!);
  const rows = await ours.db.sql<{ ms: number }[]>`
    select extract(epoch from (ready_at - completed_at)) * 1000 as ms
    from uploads where id = any(${ids}) and ready_at is not null and completed_at is not null`;
  return rows.map((r) => Number(r.ms));
}

/** When the last of these uploads became ready, in ms since the epoch (Postgres's clock). */
async function dbLastReadyAt(ours: Ours, urls: string[]): Promise<number> {
  const ids = urls.map((u) => new URL(u).pathname.split('/').pop()!);
  const [row] = await ours.db.sql<{ at: number | null }[]>`
    select extract(epoch from max(ready_at)) * 1000 as at from uploads where id = any(${ids}) and status = 'ready'`;
  if (row?.at == null) throw new Error('none of the uploads is ready');
  return Number(row.at);
}

// ---------------------------------------------------------------------------------------------
// Sections

interface Mode {
  name: string;
  client: 'tus' | 'curl';
  chunk: number;
}

const LARGE_MODES: Mode[] = [
  { name: 'tus-js-client, one PATCH', client: 'tus', chunk: Infinity },
  { name: 'tus-js-client, 64 MiB chunks', client: 'tus', chunk: 64 * MiB },
  { name: 'tus-js-client, 8 MiB chunks', client: 'tus', chunk: 8 * MiB },
  { name: 'curl, one PATCH', client: 'curl', chunk: Infinity },
  { name: 'curl, 64 MiB chunks', client: 'curl', chunk: 64 * MiB },
  { name: 'curl, 8 MiB chunks', client: 'curl', chunk: 8 * MiB },
];

interface Files {
  dir: string;
  large: string;
  pieces: Map<number, { files: string[]; sizes: number[] }>;
}

async function largeFiles(work: string, size: number, modes: Mode[]): Promise<Files> {
  const large = path.join(work, `large-${size}.bin`);
  await stat(large).catch(() => randomFile(large, size));
  const pieces = new Map<number, { files: string[]; sizes: number[] }>();
  pieces.set(Infinity, { files: [large], sizes: [size] });
  for (const mode of modes) {
    if (mode.client !== 'curl' || pieces.has(mode.chunk)) continue;
    const files = await splitFile(large, mode.chunk, path.join(work, `split-${mode.chunk}`));
    const sizes = await Promise.all(files.map(async (f) => (await stat(f)).size));
    pieces.set(mode.chunk, { files, sizes });
  }
  return { dir: work, large, pieces };
}

async function uploadLarge(subject: Subject, mode: Mode, files: Files, size: number): Promise<UploadResult> {
  if (mode.client === 'tus') return tusUploadFile(subject.endpoint, files.large, mode.chunk);
  const p = files.pieces.get(mode.chunk)!;
  return curlUpload(subject.endpoint, size, p.files, p.sizes);
}

/**
 * Runs every mode × subject RUNS times, rotating the subject order per run. Per run: MiB/s (wall
 * clock at the client) and the server process's CPU seconds per GiB received (user + system, all
 * threads; far less sensitive than wall time to other work on the machine).
 */
async function measureLarge(
  subjects: Subject[],
  modes: Mode[],
  files: Files,
  size: number,
  onOurs?: (mode: Mode, ms: number) => void,
  runs = RUNS,
) {
  const rates = new Map<string, number[]>();
  const cpus = new Map<string, number[]>();
  const key = (mode: Mode, subject: string) => `${mode.name}|${subject}`;
  const push = (map: Map<string, number[]>, k: string, v: number) => (map.get(k) ?? map.set(k, []).get(k)!).push(v);
  const failures: string[] = [];
  for (let run = 0; run < runs; run++) {
    for (const mode of modes) {
      for (const subject of rotate(subjects, run)) {
        syncDisks();
        const cpuBefore = await cpuSecondsOf(subject.child.pid);
        let result: UploadResult;
        try {
          result = await uploadLarge(subject, mode, files, size);
        } catch (error) {
          // One failed upload loses its data point, not the section; the report says so.
          const text = `${mode.name} → ${subject.name}, run ${run + 1}: upload failed: ${String(error).slice(0, 300)}`;
          log(`${text}\n${subject.child.output().slice(-2000)}`);
          failures.push(text);
          continue;
        }
        const cpu = ((await cpuSecondsOf(subject.child.pid)) - cpuBefore) / (size / GiB);
        const finishToReady = await subject.after(result);
        if (finishToReady !== null && subject.name === 'ours') onOurs?.(mode, finishToReady);
        const rate = mbps(size, result.ms);
        push(rates, key(mode, subject.name), rate);
        push(cpus, key(mode, subject.name), cpu);
        log(
          `${mode.name} → ${subject.name}: ${rate.toFixed(0)} MiB/s, server CPU ${cpu.toFixed(2)} s/GiB` +
            (finishToReady !== null ? `, ready ${finishToReady.toFixed(0)} ms later` : ''),
        );
      }
    }
  }
  return {
    failures,
    rate: (mode: Mode, subject: string) => rates.get(key(mode, subject)) ?? [],
    cpu: (mode: Mode, subject: string) => cpus.get(key(mode, subject)) ?? [],
  };
}

async function sha256sumMs(file: string): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await execFileP('sha256sum', [file]);
    times.push(performance.now() - t);
  }
  return times;
}

async function throughputSection(report: Report, work: string): Promise<void> {
  const size = SIZES.large;
  log(`throughput: ${sizeName(size)}, ${RUNS} runs`);
  const files = await largeFiles(work, size, LARGE_MODES);
  const subjects: Subject[] = [];
  let ours: Ours | undefined;
  // Finish-to-ready of the tus-js-client runs, by chunk size (one PATCH, 8 MiB chunks).
  const readyMs = new Map<number, number[]>([
    [Infinity, []],
    [8 * MiB, []],
  ]);
  try {
    subjects.push(await startRawSink('raw-sink', false));
    subjects.push(await startRawSink('raw-sink+fsync', true));
    subjects.push(await startBareTus('bare-tus'));
    ours = await startOurs('ours');
    subjects.push(ours);
    if (options.compareRoot) subjects.push(await startOurs('patched', {}, options.compareRoot));
    const m = await measureLarge(subjects, LARGE_MODES, files, size, (mode, ms) => {
      if (mode.client === 'tus') readyMs.get(mode.chunk)?.push(ms);
    });
    for (const f of m.failures) report.note(f);
    const section = `throughput ${sizeName(size)} (file store)`;
    for (const mode of LARGE_MODES) {
      const one = mode.chunk === Infinity;
      const raw = m.rate(mode, 'raw-sink');
      const rawFsync = m.rate(mode, 'raw-sink+fsync');
      const bare = m.rate(mode, 'bare-tus');
      const mine = m.rate(mode, 'ours');
      const unit = 'MiB/s';
      report.add({ section, case: mode.name, subject: 'raw-sink', unit, runs: raw });
      report.add({ section, case: mode.name, subject: 'raw-sink+fsync', unit, runs: rawFsync, baseline: 'raw-sink', baselineRuns: raw });
      report.add({ section, case: mode.name, subject: 'bare-tus', unit, runs: bare, baseline: 'raw-sink', baselineRuns: raw });
      report.add({
        section, case: mode.name, subject: 'ours (fsync)', unit, runs: mine, baseline: 'raw-sink', baselineRuns: raw,
        target: one ? { on: 'ratio', op: '>=', value: 0.9 } : undefined,
      });
      report.add({
        section, case: mode.name, subject: 'ours (fsync)', unit, runs: mine, baseline: 'raw-sink+fsync', baselineRuns: rawFsync,
        target: one ? { on: 'ratio', op: '>=', value: 0.9 } : undefined,
        note: 'same durability: both fsync before acknowledging',
      });
      report.add({ section, case: mode.name, subject: 'ours (fsync)', unit, runs: mine, baseline: 'bare-tus', baselineRuns: bare, target: { on: 'ratio', op: '>', value: 1 } });
      if (options.compareRoot) {
        const patched = m.rate(mode, 'patched');
        const subject = 'ours patched (fsync)';
        report.add({ section, case: mode.name, subject, unit, runs: patched, baseline: 'raw-sink', baselineRuns: raw, target: one ? { on: 'ratio', op: '>=', value: 0.9 } : undefined });
        report.add({ section, case: mode.name, subject, unit, runs: patched, baseline: 'raw-sink+fsync', baselineRuns: rawFsync, target: one ? { on: 'ratio', op: '>=', value: 0.9 } : undefined });
        report.add({ section, case: mode.name, subject, unit, runs: patched, baseline: 'bare-tus', baselineRuns: bare, target: { on: 'ratio', op: '>', value: 1 } });
        report.add({ section, case: mode.name, subject, unit, runs: patched, baseline: 'ours (fsync)', baselineRuns: mine });
      }
      const cpuUnit = 'CPU s/GiB';
      const rawCpu = m.cpu(mode, 'raw-sink');
      for (const name of ['raw-sink', 'bare-tus', 'ours', ...(options.compareRoot ? ['patched'] : [])]) {
        report.add({
          section, case: `${mode.name}: server CPU`, subject: name === 'ours' ? 'ours (fsync)' : name === 'patched' ? 'ours patched (fsync)' : name, unit: cpuUnit, runs: m.cpu(mode, name),
          ...(name === 'raw-sink' ? {} : { baseline: 'raw-sink', baselineRuns: rawCpu }),
        });
      }
    }
    // Processing of the large file: from the one-PATCH tus runs.
    const sums = await sha256sumMs(files.large);
    for (const [chunk, runs] of readyMs) {
      report.add({
        section: 'processing', case: `${sizeName(size)} finish-to-ready, ${chunk === Infinity ? 'one PATCH' : `${sizeName(chunk)} chunks`}`,
        subject: 'ours', unit: 'ms', runs, baseline: 'sha256sum', baselineRuns: sums, target: { on: 'ratio', op: '<=', value: 0.1 },
        note: 'from the final PATCH response until Postgres says ready (polled every 5 ms); hashed on arrival: sniff + dedup only (issue #23)',
      });
    }
    report.add({ section: 'processing', case: `sha256sum ${sizeName(size)}`, subject: 'sha256sum', unit: 'ms', runs: sums });
  } finally {
    for (const s of subjects) await s.stop().catch((e: unknown) => log(`stopping ${s.name}: ${String(e)}`));
    await removeDir(path.join(work, 'split-' + 64 * MiB));
    await removeDir(path.join(work, 'split-' + 8 * MiB));
  }
}

async function smallSection(report: Report): Promise<void> {
  const { smallCount: count, smallSize: size, smallConcurrency: concurrency } = SIZES;
  log(`small files: ${count} × ${size / 1024} KiB, ${concurrency} concurrent, ${RUNS} runs`);
  const subjects: Subject[] = [];
  let ours: Ours | undefined;
  const rate = new Map<string, number[]>();
  const lat = new Map<string, { p50: number[]; p95: number[]; p99: number[] }>();
  const loadedReady: number[] = [];
  // Ours, counting a file when it is `ready` (processed), not when its upload is acknowledged.
  const readyRate: number[] = [];
  const patchedReadyRate: number[] = [];
  // CPU ms per upload while receiving: the server (all its threads), PostgreSQL (every postgres
  // process, so processing that runs on after the last response is not in it) and the client.
  const cpu = new Map<string, { server: number[]; postgres: number[]; client: number[] }>();
  try {
    subjects.push(await startBareTus('bare-tus'));
    ours = await startOurs('ours');
    subjects.push(ours);
    // The request path alone: no worker (ROLE=api), so nothing is processed while it receives.
    // Informational: says how much of the gap to bare @tus/server is processing sharing the cores.
    subjects.push(await startOurs('ours-api', { ROLE: 'api' }));
    if (options.compareRoot) subjects.push(await startOurs('patched', {}, options.compareRoot));
    // Warm-up (JIT, connection pools, prepared statements), not measured: a quarter of a run, so
    // the first measured run of each subject is not its slowest.
    for (const s of subjects) {
      await tusUploadMany(s.endpoint, Array.from({ length: Math.max(64, count / 4) }, () => randomBytes(size)), concurrency);
    }
    for (const s of subjects) if ('waitAllSettled' in s) await (s as Ours).waitAllSettled();
    for (let run = 0; run < RUNS; run++) {
      for (const s of rotate(subjects, run)) {
        const all = randomBytes(count * size);
        const buffers = Array.from({ length: count }, (_, i) => all.subarray(i * size, (i + 1) * size));
        syncDisks();
        const before = { server: await cpuSecondsOf(s.child.pid), postgres: await postgresCpuByPid(), client: process.cpuUsage() };
        const startedAt = Date.now();
        const result = await tusUploadMany(s.endpoint, buffers, concurrency);
        const clientUsage = process.cpuUsage(before.client);
        const c = cpu.get(s.name) ?? cpu.set(s.name, { server: [], postgres: [], client: [] }).get(s.name)!;
        c.server.push((((await cpuSecondsOf(s.child.pid)) - before.server) * 1000) / count);
        c.postgres.push((postgresCpuSince(before.postgres, await postgresCpuByPid()) * 1000) / count);
        c.client.push((clientUsage.user + clientUsage.system) / 1000 / count);
        if (result.failures > 0) {
          log(`${s.name}: ${result.failures} of ${count} small uploads failed:\n${result.errors.join('\n')}\n${s.child.output().slice(-3000)}`);
          throw new Error(`${s.name}: ${result.failures} of ${count} small uploads failed: ${result.errors[0] ?? ''}`);
        }
        const perSecond = count / (result.totalMs / 1000);
        (rate.get(s.name) ?? rate.set(s.name, []).get(s.name)!).push(perSecond);
        const l = lat.get(s.name) ?? lat.set(s.name, { p50: [], p95: [], p99: [] }).get(s.name)!;
        l.p50.push(percentile(result.latencies, 50));
        l.p95.push(percentile(result.latencies, 95));
        l.p99.push(percentile(result.latencies, 99));
        log(`small → ${s.name}: ${perSecond.toFixed(0)} uploads/s, p50 ${l.p50.at(-1)!.toFixed(1)} ms, p99 ${l.p99.at(-1)!.toFixed(1)} ms`);
        if (s === ours) {
          await ours.waitAllSettled();
          loadedReady.push(percentile(await dbFinishToReady(ours, result.urls), 50));
          readyRate.push(count / (((await dbLastReadyAt(ours, result.urls)) - startedAt) / 1000));
        } else if (s.name === 'patched') {
          const patched = s as Ours;
          await patched.waitAllSettled();
          patchedReadyRate.push(count / (((await dbLastReadyAt(patched, result.urls)) - startedAt) / 1000));
        } else if ('waitAllSettled' in s) {
          await (s as Ours).waitAllSettled();
        }
        // Bare @tus/server's files stay until the section ends, as ours stay in its store. Deleting
        // its 4,000 files between runs made its next run allocate inodes among thousands deleted
        // seconds before, which ext4 without a journal (as on the development VM) checks one by one
        // and skips for 60-300 s: 2-3 ms of system CPU per upload instead of ~0.3, and a baseline
        // that looked up to 3 times slower than it is.
      }
    }
    const section = `small files ${count} × ${size / 1024} KiB, c=${concurrency}`;
    report.add({ section, case: 'creation-with-upload rate', subject: 'bare-tus', unit: 'uploads/s', runs: rate.get('bare-tus')! });
    report.add({
      section, case: 'creation-with-upload rate', subject: 'ours', unit: 'uploads/s', runs: rate.get('ours')!,
      baseline: 'bare-tus', baselineRuns: rate.get('bare-tus')!, target: { on: 'ratio', op: '>=', value: 0.8 },
    });
    report.add({
      section, case: 'ready rate', subject: 'ours', unit: 'files/s', runs: readyRate,
      baseline: 'bare-tus', baselineRuns: rate.get('bare-tus')!, target: { on: 'ratio', op: '>=', value: 0.8 },
      note: 'files ready (hashed, de-duplicated, quota committed) per second, from the first request to the last ready_at; bare @tus/server: uploads acknowledged',
    });
    report.add({
      section, case: 'creation-with-upload rate', subject: 'ours, request path only (ROLE=api)', unit: 'uploads/s', runs: rate.get('ours-api')!,
      baseline: 'bare-tus', baselineRuns: rate.get('bare-tus')!,
      note: 'no worker: nothing processed meanwhile (informational; the target is for ours, processing included)',
    });
    if (options.compareRoot) {
      report.add({
        section, case: 'creation-with-upload rate', subject: 'ours patched', unit: 'uploads/s', runs: rate.get('patched')!,
        baseline: 'bare-tus', baselineRuns: rate.get('bare-tus')!, target: { on: 'ratio', op: '>=', value: 0.8 },
      });
      report.add({
        section, case: 'ready rate', subject: 'ours patched', unit: 'files/s', runs: patchedReadyRate,
        baseline: 'bare-tus', baselineRuns: rate.get('bare-tus')!, target: { on: 'ratio', op: '>=', value: 0.8 },
      });
    }
    for (const p of ['p50', 'p95', 'p99'] as const) {
      report.add({ section, case: `latency ${p}`, subject: 'bare-tus', unit: 'ms', runs: lat.get('bare-tus')![p] });
      report.add({ section, case: `latency ${p}`, subject: 'ours', unit: 'ms', runs: lat.get('ours')![p], baseline: 'bare-tus', baselineRuns: lat.get('bare-tus')![p] });
      if (options.compareRoot) {
        report.add({ section, case: `latency ${p}`, subject: 'ours patched', unit: 'ms', runs: lat.get('patched')![p], baseline: 'bare-tus', baselineRuns: lat.get('bare-tus')![p] });
      }
    }
    for (const [name, c] of cpu) {
      const subject = name === 'ours-api' ? 'ours, request path only (ROLE=api)' : name === 'patched' ? 'ours patched' : name;
      report.add({ section, case: 'CPU per upload: server', subject, unit: 'ms', runs: c.server });
      if (name !== 'bare-tus') report.add({ section, case: 'CPU per upload: PostgreSQL', subject, unit: 'ms', runs: c.postgres });
      report.add({ section, case: 'CPU per upload: client', subject, unit: 'ms', runs: c.client });
    }
    report.add({
      section, case: 'finish-to-ready p50 under this load', subject: 'ours', unit: 'ms', runs: loadedReady,
      note: 'Postgres ready_at - completed_at while the 2,000 uploads queue up (informational)',
    });
  } finally {
    for (const s of subjects) await s.stop().catch((e: unknown) => log(`stopping ${s.name}: ${String(e)}`));
  }
}

async function processingSection(report: Report, work: string): Promise<void> {
  const n = SIZES.processingSmall;
  const size = SIZES.smallSize;
  log(`processing: ${n} sequential ${size / 1024} KiB uploads × ${RUNS} runs`);
  const ours = await startOurs('ours');
  try {
    await tusUploadBuffer(ours.endpoint, randomBytes(size)).then((r) => ours.waitReady(r)); // warm-up
    const p50: number[] = [];
    const p95: number[] = [];
    const dbP50: number[] = [];
    const sums: number[] = [];
    const sample = path.join(work, 'small.bin');
    for (let run = 0; run < RUNS; run++) {
      const observed: number[] = [];
      const urls: string[] = [];
      for (let i = 0; i < n; i++) {
        const result = await tusUploadBuffer(ours.endpoint, randomBytes(size));
        observed.push(await ours.waitReady(result, 2));
        urls.push(result.url);
      }
      const recorded = await dbFinishToReady(ours, urls);
      p50.push(percentile(observed, 50));
      p95.push(percentile(observed, 95));
      dbP50.push(percentile(recorded, 50));
      await writeFile(sample, randomBytes(size));
      const t = performance.now();
      await execFileP('sha256sum', [sample]);
      sums.push(performance.now() - t);
      log(`processing run ${run + 1}: p50 ${p50.at(-1)!.toFixed(1)} ms, p95 ${p95.at(-1)!.toFixed(1)} ms (db p50 ${dbP50.at(-1)!.toFixed(1)} ms)`);
    }
    const section = 'processing';
    const c = `${size / 1024} KiB finish-to-ready`;
    const target: Target = { on: 'value', op: '<', value: 100 };
    report.add({ section, case: `${c} p50`, subject: 'ours', unit: 'ms', runs: p50, baseline: 'sha256sum process', baselineRuns: sums, target, note: 'scanning off; client view: final response → status ready in Postgres (polled every 2 ms)' });
    report.add({ section, case: `${c} p95`, subject: 'ours', unit: 'ms', runs: p95, baseline: 'sha256sum process', baselineRuns: sums });
    report.add({ section, case: `${c} p50 (ready_at - completed_at)`, subject: 'ours', unit: 'ms', runs: dbP50, baseline: 'sha256sum process', baselineRuns: sums });
  } finally {
    await ours.stop();
  }
}

async function memorySection(report: Report, work: string): Promise<void> {
  log(`memory: sizes ${SIZES.memory.map(sizeName).join(', ')}, ${RUNS} runs`);
  const peak = new Map<string, number[]>();
  for (const size of SIZES.memory) {
    const a = path.join(work, `mem-a-${size}.bin`);
    const b = path.join(work, `mem-b-${size}.bin`);
    await randomFile(a, size);
    await randomFile(b, size);
    for (let run = 0; run < RUNS; run++) {
      const kinds = options.compareRoot ? (['bare-tus', 'ours', 'patched'] as const) : (['bare-tus', 'ours'] as const);
      for (const kind of rotate([...kinds], run)) {
        syncDisks();
        const subject =
          kind === 'ours' ? await startOurs('ours-mem') : kind === 'patched' ? await startOurs('patched-mem', {}, options.compareRoot) : await startBareTus('bare-mem');
        try {
          const idle = (await memoryOf(subject.child.pid))?.rss ?? 0;
          // Receive A; then receive B while (ours) hashes A.
          const first = await tusUploadFile(subject.endpoint, a);
          const processing = kind !== 'bare-tus' ? (subject as Ours).waitReady(first, 20) : Promise.resolve(0);
          const second = await tusUploadFile(subject.endpoint, b);
          await processing;
          if (kind !== 'bare-tus') await (subject as Ours).waitReady(second, 20);
          const m = await memoryOf(subject.child.pid);
          const hwm = (m?.hwm ?? NaN) / MiB;
          const key = `${kind}|${size}`;
          (peak.get(key) ?? peak.set(key, []).get(key)!).push(hwm);
          log(`memory ${sizeName(size)} → ${kind}: peak RSS ${hwm.toFixed(0)} MiB (idle ${(idle / MiB).toFixed(0)} MiB)`);
        } finally {
          await subject.stop();
        }
      }
    }
    await rm(a, { force: true });
    await rm(b, { force: true });
  }
  const section = 'memory (peak RSS, VmHWM)';
  for (const size of SIZES.memory) {
    const c = `receive ${sizeName(size)} while hashing ${sizeName(size)}`;
    report.add({ section, case: c, subject: 'bare-tus', unit: 'MiB', runs: peak.get(`bare-tus|${size}`)!, note: 'bare receives both files; it hashes nothing' });
    report.add({ section, case: c, subject: 'ours', unit: 'MiB', runs: peak.get(`ours|${size}`)!, baseline: 'bare-tus', baselineRuns: peak.get(`bare-tus|${size}`)!, target: { on: 'value', op: '<', value: 200 } });
    if (options.compareRoot) {
      report.add({ section, case: c, subject: 'ours patched', unit: 'MiB', runs: peak.get(`patched|${size}`)!, baseline: 'bare-tus', baselineRuns: peak.get(`bare-tus|${size}`)!, target: { on: 'value', op: '<', value: 200 } });
    }
  }
  const [small, big] = SIZES.memory as [number, number];
  report.add({
    section, case: `flatness: ${sizeName(big)} vs ${sizeName(small)}`, subject: 'ours', unit: 'MiB', runs: peak.get(`ours|${big}`)!,
    baseline: `ours at ${sizeName(small)}`, baselineRuns: peak.get(`ours|${small}`)!, target: { on: 'ratio', op: '<=', value: 1.15 },
  });
}

async function startMotoServer(): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const port = await freePort();
  const moto = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'ignore'] });
  const endpoint = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (moto.exitCode !== null || moto.signalCode !== null) return;
    const exited = new Promise((r) => moto.once('exit', r));
    moto.kill('SIGTERM');
    await Promise.race([exited, sleep(5_000)]);
    if (moto.exitCode === null && moto.signalCode === null) moto.kill('SIGKILL');
  };
  try {
    await waitFor(async () => (await fetch(`${endpoint}/moto-api/`)).ok, 'moto_server', 60_000, 200);
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, stop };
}

/**
 * S3 through moto. moto keeps every object in memory and was seen to stop answering after about
 * 1 GiB of multipart traffic, so each run gets a fresh moto_server (and fresh servers on it).
 */
async function s3Section(report: Report, work: string): Promise<void> {
  const size = SIZES.s3;
  log(`s3: ${sizeName(size)} through moto, ${RUNS} runs (fresh moto per run)`);
  const modes = LARGE_MODES.filter((m) => m.client === 'tus' && m.chunk !== 8 * MiB);
  const files = await largeFiles(work, size, modes);
  const rates = new Map<string, number[]>();
  const cpus = new Map<string, number[]>();
  const direct = { rate: [] as number[], cpu: [] as number[] };
  for (let run = 0; run < RUNS; run++) {
    const moto = await startMotoServer();
    const subjects: Subject[] = [];
    try {
      const s3 = new S3Client({ endpoint: moto.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
      for (const bucket of ['bench-bare', 'bench-ours']) await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      s3.destroy();
      subjects.push(await startBareTus('bare-tus-s3', { STORE: 's3', S3_BUCKET: 'bench-bare', S3_ENDPOINT: moto.endpoint }));
      subjects.push(
        await startOurs('ours-s3', {
          STORAGE: 's3', S3_BUCKET: 'bench-ours', S3_ENDPOINT: moto.endpoint, S3_REGION: 'us-east-1',
          S3_ACCESS_KEY_ID: 'test', S3_SECRET_ACCESS_KEY: 'test', S3_FORCE_PATH_STYLE: 'true',
        }),
      );
      const m = await measureLarge(rotate(subjects, run), modes, files, size, undefined, 1);
      for (const f of m.failures) report.note(`s3 run ${run + 1}: ${f}`);
      for (const mode of modes) {
        for (const name of ['bare-tus-s3', 'ours-s3']) {
          const k = `${mode.name}|${name}`;
          (rates.get(k) ?? rates.set(k, []).get(k)!).push(...m.rate(mode, name));
          (cpus.get(k) ?? cpus.set(k, []).get(k)!).push(...m.cpu(mode, name));
        }
      }
      // The same file straight to the bucket: the server presigns and records, the bytes skip it.
      const ours = subjects.find((s) => s.name === 'ours-s3')!;
      try {
        const cpuBefore = await cpuSecondsOf(ours.child.pid);
        const result = await directUploadFile(ours.endpoint.replace(/\/files$/, '/api'), files.large, size, DIRECT_PART_SIZE);
        direct.cpu.push(((await cpuSecondsOf(ours.child.pid)) - cpuBefore) / (size / GiB));
        direct.rate.push(mbps(size, result.ms));
        await ours.after(result);
        log(`direct to bucket → ours-s3: ${direct.rate.at(-1)!.toFixed(0)} MiB/s, server CPU ${direct.cpu.at(-1)!.toFixed(3)} s/GiB`);
      } catch (error) {
        report.note(`s3 run ${run + 1}: direct upload failed: ${String(error).slice(0, 300)}`);
      }
    } finally {
      for (const s of subjects) await s.stop().catch((e: unknown) => log(`stopping ${s.name}: ${String(e)}`));
      await moto.stop();
    }
  }
  const get = (mode: Mode, name: string) => rates.get(`${mode.name}|${name}`) ?? [];
  const section = `s3 ${sizeName(size)} (moto)`;
  for (const mode of modes) {
    report.add({ section, case: mode.name, subject: 'bare-tus (s3-store)', unit: 'MiB/s', runs: get(mode, 'bare-tus-s3') });
    report.add({
      section, case: mode.name, subject: 'ours (s3)', unit: 'MiB/s', runs: get(mode, 'ours-s3'),
      baseline: 'bare-tus (s3-store)', baselineRuns: get(mode, 'bare-tus-s3'), target: { on: 'ratio', op: '>=', value: 0.9 },
    });
  }
  // Direct to the bucket vs through the tus endpoint (one PATCH): the server's CPU for the upload
  // (create → complete answered; processing, the same for both, mostly after).
  const viaTus = modes.find((mode) => mode.chunk === Infinity) ?? modes[0]!;
  report.add({ section, case: `direct to bucket (${sizeName(DIRECT_PART_SIZE)} parts)`, subject: 'ours (s3-direct)', unit: 'MiB/s', runs: direct.rate, baseline: 'ours (s3)', baselineRuns: get(viaTus, 'ours-s3') });
  report.add({ section, case: `server CPU: ${viaTus.name}`, subject: 'ours (s3)', unit: 's/GiB', runs: cpus.get(`${viaTus.name}|ours-s3`) ?? [] });
  report.add({
    section, case: 'server CPU: direct to bucket', subject: 'ours (s3-direct)', unit: 's/GiB', runs: direct.cpu,
    baseline: 'ours (s3)', baselineRuns: cpus.get(`${viaTus.name}|ours-s3`) ?? [],
  });
}

const DIRECT_PART_SIZE = 8 * MiB;

/** Where bare @tus/server loses against the raw sink: the fast paths switched on one at a time. */
async function investigateSection(report: Report, work: string): Promise<void> {
  const size = SIZES.investigate;
  log(`investigate: ${sizeName(size)}, ${RUNS} runs`);
  const variants: Array<{ name: string; env: Record<string, string> | null; fsync?: boolean }> = [
    { name: 'raw-sink', env: null },
    { name: 'bare: stock', env: {} },
    { name: 'bare: +node body', env: { BODY: 'node' } },
    { name: 'bare: +1MiB write buffer', env: { WRITER: 'writestream', HWM: String(MiB) } },
    { name: 'bare: +node body +no transform (16KiB buf)', env: { BODY: 'node', WRITER: 'writestream', HWM: String(16 * 1024) } },
    { name: 'bare: +node body +no transform +1MiB buf', env: { BODY: 'node', WRITER: 'writestream', HWM: String(MiB) } },
    { name: 'bare: +node body +writev sink 1MiB', env: { BODY: 'node', WRITER: 'sink', HWM: String(MiB) } },
    { name: 'raw-sink+fsync', env: null, fsync: true },
    { name: 'bare: stock +fsync (=DurableFileStore)', env: { WRITER: 'writestream', HWM: String(16 * 1024), DURABILITY: 'end' } },
    { name: 'bare: +node body +1MiB buf +fsync', env: { BODY: 'node', WRITER: 'writestream', HWM: String(MiB), DURABILITY: 'end' } },
    { name: 'bare: +node body +sink +incremental fdatasync', env: { BODY: 'node', WRITER: 'sink', HWM: String(MiB), DURABILITY: 'incremental' } },
  ];
  const modes = LARGE_MODES.filter((m) => m.chunk === Infinity || (m.client === 'tus' && m.chunk === 8 * MiB));
  const files = await largeFiles(work, size, modes);
  const subjects: Subject[] = [];
  try {
    for (const v of variants) {
      subjects.push(v.env === null ? await startRawSink(v.name, v.fsync ?? false) : await startBareTus(v.name, v.env));
    }
    const { rate: get, cpu, failures } = await measureLarge(subjects, modes, files, size);
    for (const f of failures) report.note(f);
    const section = `investigate ${sizeName(size)} (bare @tus/server variants)`;
    for (const mode of modes) {
      for (const v of variants) {
        const baseline = v.fsync || v.env?.DURABILITY ? 'raw-sink+fsync' : 'raw-sink';
        report.add({
          section, case: mode.name, subject: v.name, unit: 'MiB/s', runs: get(mode, v.name),
          ...(v.name === baseline ? {} : { baseline, baselineRuns: get(mode, baseline) }),
        });
      }
      for (const v of variants) {
        report.add({
          section, case: `${mode.name}: server CPU`, subject: v.name, unit: 'CPU s/GiB', runs: cpu(mode, v.name),
          ...(v.name === 'raw-sink' ? {} : { baseline: 'raw-sink', baselineRuns: cpu(mode, 'raw-sink') }),
        });
      }
    }
  } finally {
    for (const s of subjects) await s.stop().catch((e: unknown) => log(`stopping ${s.name}: ${String(e)}`));
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now();
  const machine = await describeMachine();
  const report = new Report(machine, { ...options, only: [...options.only], sizes: SIZES, runs: RUNS });
  report.note('raw-sink does not fsync (page cache only); raw-sink+fsync fsyncs each PATCH before answering, as our DurableFileStore does.');
  report.note('Ratios are median / baseline median, both measured in this invocation; each median is over the listed runs.');
  if (options.serverRoot !== ROOT) report.note(`"ours" ran from ${options.serverRoot}`);
  if (options.compareRoot) report.note(`"ours patched" ran from ${options.compareRoot}`);
  if (Object.keys(options.oursEnv).length > 0) report.note(`"ours" ran with ${JSON.stringify(options.oursEnv)}`);
  if (Object.keys(options.dbSettings).length > 0) report.note(`databases set ${JSON.stringify(options.dbSettings)}`);
  process.stdout.write(`${report.machineText()}\n\n`);
  report.note(`load average at start: ${await loadAverage()} (other work on the machine adds noise to wall-clock numbers)`);
  const work = await tempDir('files');
  const cleanup = () => void removeDir(work);
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    const sections: Record<Section, () => Promise<void>> = {
      throughput: () => throughputSection(report, work),
      small: () => smallSection(report),
      processing: () => processingSection(report, work),
      memory: () => memorySection(report, work),
      s3: () => s3Section(report, work),
      investigate: () => investigateSection(report, work),
    };
    for (const name of SECTIONS) {
      if (!options.only.has(name)) continue;
      const t = performance.now();
      try {
        await sections[name]();
      } catch (error) {
        log(`section ${name} failed: ${error instanceof Error ? error.stack : String(error)}`);
        report.note(`section ${name} failed: ${String(error)}`);
        process.exitCode = 1;
      }
      log(`section ${name} took ${((performance.now() - t) / 1000).toFixed(0)} s`);
    }
  } finally {
    await removeDir(work);
  }
  report.note(`load average at end: ${await loadAverage()}`);
  report.note(`total time ${((performance.now() - started) / 1000).toFixed(0)} s`);
  const file = await report.write();
  process.stdout.write(`${report.table()}\n\n${report.notes.map((n) => `* ${n}`).join('\n')}\n\nJSON: ${path.relative(process.cwd(), file)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
