// The tus Locker contract (@tus/utils Locker/Lock: lock(signal, requestRelease), unlock()) for
// our PostgreSQL advisory-lock locker (src/tus/pg-locker.ts), built as src/start.ts builds it, on a
// real database: between two requests of one process, between two lockers with their own
// connections (two server processes), and against a real process that is killed while it holds a
// lock. @tus/server's MemoryLocker runs the in-process part of the same suite, as the reference.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MemoryLocker } from '@tus/server';
import { ERRORS, type Lock, type Locker } from '@tus/utils';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { PostgresLocker } from '../../src/tus/pg-locker.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ROOT } from '../support/server.js';

/** How long a waiter tries before it gives up, in every locker under test. */
const TIMEOUT_MS = 1000;
const logger = createLogger('silent');

interface LockerPair {
  /** Two lockers sharing their locks: the same one twice, or one per "process". */
  first: Locker;
  second: Locker;
  close(): Promise<void>;
}

const uploadId = () => randomBytes(16).toString('hex');
const never = new AbortController().signal;
const noRelease = () => {};

function outcome(promise: Promise<unknown>): Promise<'locked' | unknown> {
  return promise.then(
    () => 'locked',
    (error: unknown) => error,
  );
}

function lockerContract(name: string, setup: () => Promise<LockerPair>): void {
  describe(`Locker contract: ${name}`, () => {
    let pair: LockerPair;
    beforeAll(async () => {
      pair = await setup();
    });
    afterAll(async () => {
      await pair?.close();
    });

    it('is exclusive: a waiter whose holder does not let go gives up with ERR_LOCK_TIMEOUT after the timeout', async () => {
      const id = uploadId();
      const holder = pair.first.newLock(id);
      await holder.lock(never, noRelease);

      const started = Date.now();
      const waited = await outcome(pair.second.newLock(id).lock(never, noRelease));
      const elapsed = Date.now() - started;
      expect(waited).toBe(ERRORS.ERR_LOCK_TIMEOUT);
      expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
      expect(elapsed).toBeLessThan(TIMEOUT_MS + 1500);

      // Only that upload is locked.
      const other = pair.second.newLock(uploadId());
      await other.lock(never, noRelease);
      await other.unlock();

      // Let go, and the other side gets it at once.
      await holder.unlock();
      const next = pair.second.newLock(id);
      const before = Date.now();
      await next.lock(never, noRelease);
      expect(Date.now() - before).toBeLessThan(TIMEOUT_MS);
      await next.unlock();
    });

    it('honours a release request: the holder is asked, lets go, and the waiter gets the lock', async () => {
      const id = uploadId();
      const holder = pair.first.newLock(id);
      let asked = 0;
      let released = false;
      await holder.lock(never, async () => {
        asked++;
        if (released) return;
        released = true;
        await holder.unlock();
      });

      const waiter = pair.second.newLock(id);
      const started = Date.now();
      await waiter.lock(never, noRelease);
      expect(Date.now() - started).toBeLessThan(TIMEOUT_MS);
      expect(asked).toBeGreaterThanOrEqual(1);
      expect(released).toBe(true);
      await waiter.unlock();
    });

    it('a waiter whose request is aborted gives up at once with ERR_LOCK_TIMEOUT', async () => {
      const id = uploadId();
      const holder = pair.first.newLock(id);
      await holder.lock(never, noRelease);
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 100);
      const started = Date.now();
      expect(await outcome(pair.second.newLock(id).lock(abort.signal, noRelease))).toBe(ERRORS.ERR_LOCK_TIMEOUT);
      expect(Date.now() - started).toBeLessThan(TIMEOUT_MS - 300);
      await holder.unlock();
    });

    it('never lets two holders in at once, however many want the lock', async () => {
      const id = uploadId();
      let inside = 0;
      let most = 0;
      let done = 0;
      // Each holds the lock for a moment, and lets go early when asked.
      const contender = async (locker: Locker) => {
        const lock: Lock = locker.newLock(id);
        let letGo: (() => void) | undefined;
        await lock.lock(never, () => letGo?.());
        inside++;
        most = Math.max(most, inside);
        await new Promise<void>((resolve) => {
          letGo = resolve;
          setTimeout(resolve, 40);
        });
        inside--;
        await lock.unlock();
        done++;
      };
      await Promise.all(Array.from({ length: 6 }, (_, i) => contender(i % 2 ? pair.second : pair.first)));
      expect(done).toBe(6);
      expect(most).toBe(1);
    });

    it('unlocking a lock that is not held is an error', async () => {
      const lock = pair.first.newLock(uploadId());
      await expect(lock.unlock()).rejects.toThrow(/unlocked lock/);
      await lock.lock(never, noRelease);
      await lock.unlock();
      await expect(lock.unlock()).rejects.toThrow(/unlocked lock/);
    });
  });
}

lockerContract('MemoryLocker (@tus/server, one process)', async () => {
  const locker = new MemoryLocker({ acquireLockTimeout: TIMEOUT_MS });
  return { first: locker, second: locker, close: async () => {} };
});

describe('PostgresLocker', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('locker');
  });
  afterAll(async () => {
    await db?.drop();
  });

  /** A locker as src/start.ts makes one: its own lock pool, LISTEN on the given postgres.js client. */
  async function startLocker(sql: postgres.Sql, acquireTimeoutMs = TIMEOUT_MS): Promise<PostgresLocker> {
    const locker = new PostgresLocker(db.url, sql, logger, { acquireTimeoutMs, retryIntervalMs: 20, maxConnections: 10 });
    await locker.start();
    return locker;
  }

  lockerContract('PostgresLocker, two requests of one process', async () => {
    const locker = await startLocker(db.sql);
    return { first: locker, second: locker, close: () => locker.stop() };
  });

  lockerContract('PostgresLocker, two processes (two lockers, their own connections)', async () => {
    const first = await startLocker(db.sql);
    const otherSql = postgres(db.url, { max: 2, onnotice: () => {} });
    const second = await startLocker(otherSql);
    return {
      first,
      second,
      close: async () => {
        await first.stop();
        await second.stop();
        await otherSql.end({ timeout: 2 });
      },
    };
  });

  describe('a holder in another process', () => {
    let child: ChildProcess | undefined;
    afterAll(() => {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });

    /** `node --import tsx`: takes the lock through src/tus/pg-locker.ts and holds it, never letting go. */
    function spawnHolder(id: string) {
      const module = (file: string) => JSON.stringify(pathToFileURL(path.join(ROOT, file)).href);
      const script = `
        import postgres from 'postgres';
        const { PostgresLocker } = await import(${module('src/tus/pg-locker.ts')});
        const { createLogger } = await import(${module('src/logger.ts')});
        const sql = postgres(process.env.LOCK_DB_URL, { max: 2, onnotice: () => {} });
        const locker = new PostgresLocker(process.env.LOCK_DB_URL, sql, createLogger('silent'), { retryIntervalMs: 20 });
        await locker.start();
        await locker.newLock(process.env.LOCK_ID).lock(new AbortController().signal, () => console.log('asked to release'));
        console.log('locked');
        setInterval(() => {}, 60_000);
      `;
      const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: ROOT,
        env: { ...process.env, LOCK_DB_URL: db.url, LOCK_ID: id },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      proc.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      proc.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const said = (line: string, timeoutMs = 20_000) =>
        new Promise<void>((resolve, reject) => {
          const started = Date.now();
          const check = () => {
            if (output.includes(line)) return resolve();
            if (proc.exitCode !== null) return reject(new Error(`the holder exited (${proc.exitCode}): ${output}`));
            if (Date.now() - started > timeoutMs) return reject(new Error(`the holder never said "${line}": ${output}`));
            setTimeout(check, 20);
          };
          check();
        });
      return { proc, said };
    }

    it('asks it to release across processes, and its lock is freed when the process is killed', async () => {
      const id = uploadId();
      const holder = spawnHolder(id);
      child = holder.proc;
      await holder.said('locked');

      const locker = await startLocker(db.sql);
      const patient = await startLocker(db.sql, 10_000);
      try {
        // Held by a live process that will not let go: this process's request times out...
        expect(await outcome(locker.newLock(id).lock(never, noRelease))).toBe(ERRORS.ERR_LOCK_TIMEOUT);
        // ...after asking the holder, in its process, to let go (NOTIFY).
        await holder.said('asked to release', 5_000);

        // The holder dies without unlocking anything; PostgreSQL ends its session, and the lock with it.
        const exited = new Promise((resolve) => holder.proc.once('exit', resolve));
        holder.proc.kill('SIGKILL');
        await exited;
        const lock = patient.newLock(id);
        const started = Date.now();
        await lock.lock(never, noRelease);
        expect(Date.now() - started).toBeLessThan(5_000);
        await lock.unlock();
      } finally {
        await locker.stop();
        await patient.stop();
      }
    });
  });
});
