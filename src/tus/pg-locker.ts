// A tus locker shared by every server process: PostgreSQL session advisory locks.
//
// Each held lock pins one pooled connection (a session advisory lock lives as long as its
// session), so a process that dies releases its locks with its connections; nothing is left to
// expire. A request that finds the lock taken asks the holder, in whatever process, to let go
// (NOTIFY), the way tus expects: a client that reconnects after a network drop must be able to
// take over from its own half-open request that the server has not noticed yet.
//
// The held connections come from node-postgres, not postgres.js: postgres.js 3.4 throws an
// uncatchable error when the server of a reserved connection restarts (porsager/postgres#1208),
// which took the whole process down; node-postgres reports it as an 'error' event.
import { ERRORS, type Lock, type Locker, type RequestRelease } from '@tus/utils';
import pg from 'pg';
import type postgres from 'postgres';
import type { Logger } from '../logger.js';

const RELEASE_CHANNEL = 'tus_lock_release';

export interface PostgresLockerOptions {
  /** Give up acquiring after this long (the request then gets 423 Locked). */
  acquireTimeoutMs?: number;
  /** How often a waiting request retries. */
  retryIntervalMs?: number;
  /** Connections for held locks: one per request holding a lock at the same time. */
  maxConnections?: number;
}

export class PostgresLocker implements Locker {
  readonly acquireTimeoutMs: number;
  readonly retryIntervalMs: number;
  /** Locks held by this process, so a release request from any process reaches the holder. */
  readonly held = new Map<string, RequestRelease>();
  readonly pool: pg.Pool;
  private unlisten?: () => Promise<void>;

  constructor(
    connectionString: string,
    /** For LISTEN/NOTIFY (release requests); postgres.js re-listens by itself after a restart. */
    readonly sql: postgres.Sql,
    readonly logger: Logger,
    options: PostgresLockerOptions = {},
  ) {
    this.acquireTimeoutMs = options.acquireTimeoutMs ?? 20_000;
    this.retryIntervalMs = options.retryIntervalMs ?? 50;
    this.pool = new pg.Pool({
      connectionString,
      max: options.maxConnections ?? 100,
      idleTimeoutMillis: 60_000,
      connectionTimeoutMillis: 10_000,
      application_name: 'tusvault-locks',
    });
    // An idle pooled connection whose server went away: the pool drops it; nothing to do here.
    this.pool.on('error', (error) => logger.warn({ err: error }, 'a lock connection failed'));
  }

  async start(): Promise<void> {
    const { unlisten } = await this.sql.listen(RELEASE_CHANNEL, (id) => {
      const release = this.held.get(id);
      if (release) void Promise.resolve(release()).catch(() => {});
    });
    this.unlisten = unlisten;
  }

  async stop(): Promise<void> {
    await this.unlisten?.();
    await this.pool.end();
  }

  newLock(id: string): Lock {
    return new PostgresLock(this, id);
  }

  requestRelease(id: string): Promise<unknown> {
    const local = this.held.get(id);
    if (local) return Promise.resolve(local());
    return this.sql`select pg_notify(${RELEASE_CHANNEL}, ${id})`;
  }
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

class PostgresLock implements Lock {
  private client?: pg.PoolClient;
  /** The session died while we held the lock (its server restarted): the lock went with it. */
  private lost = false;

  constructor(
    private readonly locker: PostgresLocker,
    private readonly id: string,
  ) {}

  private readonly onClientError = (error: Error) => {
    this.lost = true;
    this.locker.logger.warn({ err: error, uploadId: this.id }, 'lost the connection holding an upload lock');
  };

  async lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    const deadline = Date.now() + this.locker.acquireTimeoutMs;
    const client = await this.locker.pool.connect();
    client.on('error', this.onClientError);
    const key = `tus:${this.id}`;
    let askedToRelease = false;
    try {
      for (;;) {
        // Named: prepared once per pooled connection.
        const { rows } = await client.query<{ locked: boolean }>({
          name: 'tus-try-lock',
          text: 'select pg_try_advisory_lock(hashtextextended($1, 0)) as locked',
          values: [key],
        });
        if (rows[0]?.locked) {
          this.client = client;
          this.locker.held.set(this.id, requestRelease);
          return;
        }
        if (!askedToRelease) {
          askedToRelease = true;
          await this.locker.requestRelease(this.id);
        }
        if (signal.aborted || Date.now() >= deadline) throw ERRORS.ERR_LOCK_TIMEOUT;
        await sleep(this.locker.retryIntervalMs, signal);
      }
    } catch (error) {
      client.off('error', this.onClientError);
      // Only a connection that merely waited in vain goes back to the pool.
      const healthy = !this.lost && error === ERRORS.ERR_LOCK_TIMEOUT;
      client.release(healthy ? undefined : true);
      throw error;
    }
  }

  async unlock(): Promise<void> {
    const client = this.client;
    if (!client) throw new Error('Releasing an unlocked lock!');
    this.client = undefined;
    if (this.locker.held.get(this.id)) this.locker.held.delete(this.id);
    let broken = this.lost;
    try {
      if (!broken) {
        await client.query({ name: 'tus-unlock', text: 'select pg_advisory_unlock(hashtextextended($1, 0))', values: [`tus:${this.id}`] });
      }
    } catch {
      // The session is gone, and the lock with it.
      broken = true;
    } finally {
      client.off('error', this.onClientError);
      // A broken connection is destroyed rather than returned to the pool.
      client.release(broken ? true : undefined);
    }
  }
}
