// Plumbing shared by the benchmark: child servers, databases, ports, files, statistics, machine.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(BENCH_DIR, '..');
export const MiB = 2 ** 20;
export const GiB = 2 ** 30;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export async function waitFor<T>(check: () => Promise<T | null | undefined | false>, what: string, timeoutMs = 60_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export interface Child {
  name: string;
  url: string;
  pid: number;
  process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

const builds = new Map<string, Promise<string>>();

/**
 * Compiles a checkout (src, hooks, tasks, bench) with tsc into `<root>/dist-bench`, once per
 * invocation, and returns that folder. Measured servers run as built JavaScript, as the Docker
 * image runs ours: a loader in the measured process (tsx) costs about 37 MiB of RSS and transpiles
 * at start.
 */
export function buildOnce(root = ROOT): Promise<string> {
  let build = builds.get(root);
  if (!build) {
    build = new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'bench/tsconfig.build.json')], { cwd: root }, (error, stdout) => {
        if (error) reject(new Error(`compiling ${root} failed:\n${stdout}`));
        else resolve(path.join(root, 'dist-bench'));
      });
    });
    builds.set(root, build);
  }
  return build;
}

/**
 * Starts `<script>` under node (cwd = root) and waits until `ready` answers: its JavaScript from
 * `build` (see buildOnce) when given, else the TypeScript through tsx.
 */
export async function spawnNode(options: {
  name: string;
  script: string;
  env: Record<string, string>;
  cwd?: string;
  port: number;
  readyPath: string;
  nodeArgs?: string[];
  build?: string;
}): Promise<Child> {
  const cwd = options.cwd ?? ROOT;
  const entry = options.build
    ? [path.join(options.build, path.relative(cwd, path.resolve(cwd, options.script)).replace(/\.ts$/, '.js'))]
    : ['--import', 'tsx', options.script];
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...entry], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...options.env, PORT: String(options.port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-50_000);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${options.port}`;
  await Promise.race([
    waitFor(async () => {
      const res = await fetch(url + options.readyPath, { method: options.readyPath === '/files' ? 'OPTIONS' : 'GET' });
      await res.arrayBuffer();
      return res.status < 500;
    }, `${options.name} to start`),
    exited.then(() => {
      throw new Error(`${options.name} exited during start:\n${output}`);
    }),
  ]);
  return {
    name: options.name,
    url,
    pid: child.pid!,
    process: child,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Peak and current resident set size of a process, from /proc (bytes). */
export async function memoryOf(pid: number): Promise<{ hwm: number; rss: number } | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
  } catch {
    return null;
  }
}

export interface BenchDatabase {
  url: string;
  sql: postgres.Sql;
  drop(): Promise<void>;
}

export const DATABASE_SERVER = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A fresh database on the Postgres at DATABASE_URL (the server migrates it at start). */
export async function createDatabase(): Promise<BenchDatabase> {
  const name = `bench_${randomBytes(5).toString('hex')}`;
  const admin = postgres(DATABASE_SERVER, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(DATABASE_SERVER);
  url.pathname = `/${name}`;
  const sql = postgres(url.toString(), { max: 2, onnotice: () => {} });
  return {
    url: url.toString(),
    sql,
    drop: async () => {
      await sql.end({ timeout: 2 });
      const admin2 = postgres(DATABASE_SERVER, { max: 1, onnotice: () => {} });
      try {
        await admin2.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await admin2.end();
      }
    },
  };
}

/**
 * The environment every measured server of ours starts with: its own database and data directory,
 * every kind accepted, uploads up to 8 GiB, quiet logs.
 */
export function ourServerEnv(databaseUrl: string, dataDir: string): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    ALLOWED_KINDS: 'fseq,xsq,audio,video,image,other',
    LOG_LEVEL: 'warn',
    MAX_UPLOAD_SIZE: '8GiB',
  };
}

/**
 * A diagnostic tool's command line: `--root DIR` (run our server from another checkout),
 * KEY=VALUE pairs (extra environment for our server) and everything else in order.
 */
export function toolArgs(argv: readonly string[] = process.argv.slice(2)): { root: string; env: Record<string, string>; positional: string[] } {
  let root = ROOT;
  const env: Record<string, string> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--root') root = path.resolve(argv[++i]!);
    else if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(a)) env[a.slice(0, a.indexOf('='))] = a.slice(a.indexOf('=') + 1);
    else positional.push(a);
  }
  return { root, env, positional };
}

/** Resolves once no upload in `db` is uploading or processing any more. */
export async function allProcessed(db: BenchDatabase, what = 'all uploads to be processed', timeoutMs = 600_000, intervalMs = 100): Promise<void> {
  await waitFor(
    async () => {
      const [r] = await db.sql<{ n: number }[]>`select count(*)::int as n from uploads where status in ('uploading', 'processing')`;
      return r?.n === 0;
    },
    what,
    timeoutMs,
    intervalMs,
  );
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(process.env.BENCH_TMPDIR ?? os.tmpdir(), `tusbench-${prefix}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Writes `size` random bytes (generated in 16 MiB blocks, so memory stays small). */
export async function randomFile(file: string, size: number): Promise<string> {
  const out = createWriteStream(file);
  const block = 16 * MiB;
  for (let written = 0; written < size; ) {
    const n = Math.min(block, size - written);
    if (!out.write(randomBytes(n))) await new Promise<void>((r) => out.once('drain', () => r()));
    written += n;
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return file;
}

/** Flushes dirty pages so that one run's writeback does not slow down the next one. */
export function syncDisks(): void {
  try {
    execFileSync('sync');
  } catch {
    // not fatal
  }
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[rank]!;
}

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

export interface Machine {
  cpuModel: string;
  cores: number;
  ramGiB: number;
  node: string;
  os: string;
  disk: string;
  tmpdir: string;
  postgres: string;
}

export async function describeMachine(): Promise<Machine> {
  const tmp = process.env.BENCH_TMPDIR ?? os.tmpdir();
  const df = run('df', ['-T', '-h', tmp]).split('\n')[1]?.split(/\s+/) ?? [];
  const device = df[0] ?? '?';
  const blk = path.basename(device);
  const rotational = run('cat', [`/sys/block/${blk}/queue/rotational`]);
  const sql = postgres(DATABASE_SERVER, { max: 1, onnotice: () => {} });
  let pg = '?';
  try {
    pg = String((await sql`show server_version`)[0]?.server_version ?? '?');
  } catch {
    // reported as ?
  } finally {
    await sql.end();
  }
  return {
    cpuModel: os.cpus()[0]?.model ?? '?',
    cores: os.cpus().length,
    ramGiB: Math.round((os.totalmem() / GiB) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    disk: `${device} (${df[1] ?? '?'}, ${df[2] ?? '?'}, ${df[4] ?? '?'} free${rotational ? `, rotational=${rotational}` : ''}${blk.startsWith('vd') ? ', virtio' : ''})`,
    tmpdir: tmp,
    postgres: `PostgreSQL ${pg} at ${new URL(DATABASE_SERVER).host}`,
  };
}

/** User and system CPU seconds from a /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat line. */
export function cpuTimesOfStat(stat: string): { user: number; sys: number } {
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / 100, sys: Number(fields[12]) / 100 };
}

/** CPU seconds (user + system, all threads) a process has used so far, from /proc/<pid>/stat. */
export async function cpuSecondsOf(pid: number): Promise<number> {
  try {
    const { user, sys } = cpuTimesOfStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
    return user + sys;
  } catch {
    return NaN;
  }
}

/** CPU seconds so far of every process named postgres, by pid. */
export async function postgresCpuByPid(): Promise<Map<number, number>> {
  const byPid = new Map<number, number>();
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
    if (comm.trim() !== 'postgres') continue;
    const seconds = await cpuSecondsOf(Number(pid));
    if (!Number.isNaN(seconds)) byPid.set(Number(pid), seconds);
  }
  return byPid;
}

/**
 * PostgreSQL CPU seconds used since `before` by the processes alive now (backends started since
 * count in full). A backend that exited in between drops out instead of making the sum negative.
 */
export function postgresCpuSince(before: Map<number, number>, now: Map<number, number>): number {
  let total = 0;
  for (const [pid, seconds] of now) total += seconds - (before.get(pid) ?? 0);
  return total;
}

/** Load average of the machine (other work running beside the benchmark shows up here). */
export async function loadAverage(): Promise<string> {
  return (await readFile('/proc/loadavg', 'utf8').catch(() => '?')).split(' ').slice(0, 3).join(' ');
}
