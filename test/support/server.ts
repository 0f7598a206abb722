// Running the real server for tests: in this process (fast, for most tests) or as a child
// process (for crash tests that SIGKILL it), always over real HTTP on loopback.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { start, type Running } from '../../src/start.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { createBucket } from './moto.js';
import { freePort, waitFor } from './ports.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export type StorageKind = 'file' | 's3';

/** Environment for a server on a given database and store; tests add what they need. */
export async function serverEnv(options: {
  databaseUrl: string;
  storage: StorageKind;
  bucket?: string;
  dataDir?: string;
  extra?: Record<string, string>;
}): Promise<Record<string, string>> {
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'tusvault-test-')));
  const env: Record<string, string> = {
    DATABASE_URL: options.databaseUrl,
    DATA_DIR: dataDir,
    STORAGE: options.storage,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'error',
    ALLOWED_KINDS: 'fseq,xsq,audio,video,image,other',
    // Several servers run at once in a test run: keep each one's connections few.
    WORKER_CONCURRENCY: '2',
    DATABASE_POOL_SIZE: '5',
    ...options.extra,
  };
  if (options.storage === 's3') {
    const bucket = options.bucket ?? `tv-${randomBytes(5).toString('hex')}`;
    const endpoint = inject('s3Endpoint');
    if (!options.bucket) await createBucket(endpoint, bucket);
    Object.assign(env, {
      S3_BUCKET: bucket,
      S3_ENDPOINT: endpoint,
      S3_REGION: 'us-east-1',
      S3_ACCESS_KEY_ID: 'test',
      S3_SECRET_ACCESS_KEY: 'test',
      S3_FORCE_PATH_STYLE: 'true',
    });
  }
  return env;
}

export interface TestServer extends Running {
  url: string;
  env: Record<string, string>;
}

/** The server in this process; `logger` to read what it logs. */
export async function startServer(env: Record<string, string>, logger?: Logger): Promise<TestServer> {
  const config = loadConfig(env);
  const running = await start(config, logger ?? createLogger(config.logLevel, { test: true }));
  if (!running.url) throw new Error('server did not listen');
  return { ...running, url: running.url, env };
}

export interface ChildServer {
  url: string;
  port: number;
  process: ChildProcess;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/** The server as a separate process (`node --import tsx src/main.ts`), as `npm start` runs it. */
export async function spawnServer(env: Record<string, string>, port?: number): Promise<ChildServer> {
  const chosen = port ?? (await freePort());
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...env,
      PORT: String(chosen),
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The last ~1 MB of output, kept as chunks: re-building one big string per chunk would keep
  // this (test) process busy while a chatty server logs, and delay everything the test does.
  const chunks: Buffer[] = [];
  let kept = 0;
  const collect = (chunk: Buffer) => {
    chunks.push(chunk);
    kept += chunk.length;
    while (kept > 1_000_000 && chunks.length > 1) kept -= chunks.shift()!.length;
  };
  const output = () => Buffer.concat(chunks).toString();
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${chosen}`;
  await Promise.race([
    waitFor(async () => (await fetch(`${url}/healthz`).catch(() => null))?.ok, { timeoutMs: 60_000, what: 'server start' }),
    exited.then((code) => {
      throw new Error(`server exited with ${code} during start:\n${output()}`);
    }),
  ]);
  return {
    url,
    port: chosen,
    process: child,
    output,
    kill: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}

/**
 * Kills a child server (SIGKILL unless told otherwise: no chance to clean up) and starts it again
 * on the same port with the same environment, so clients keep their upload URLs.
 */
export async function restartServer(server: ChildServer, env: Record<string, string>, signal: NodeJS.Signals = 'SIGKILL'): Promise<ChildServer> {
  await server.kill(signal);
  return spawnServer(env, server.port);
}

/**
 * Two servers in this process on one database (its own) and one storage: `a` runs the worker, `b`
 * is an API instance (ROLE=api). `env` is theirs, to start a replacement; `stop` stops whichever
 * `a` and `b` are then and drops the database.
 */
export interface TwoInstances {
  db: TestDatabase;
  env: Record<string, string>;
  a: TestServer;
  b: TestServer;
  stop(): Promise<void>;
}

export async function startTwoInstances(storage: StorageKind): Promise<TwoInstances> {
  const db = await createTestDatabase();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tusvault-two-'));
  const env = await serverEnv({ databaseUrl: db.url, storage, dataDir });
  const a = await startServer(env);
  const b = await startServer({ ...env, ROLE: 'api' }).catch(async (error: unknown) => {
    await a.stop();
    await db.drop();
    throw error;
  });
  const instances: TwoInstances = {
    db,
    env,
    a,
    b,
    stop: async () => {
      await instances.b.stop();
      await instances.a.stop();
      await db.drop();
    },
  };
  return instances;
}
