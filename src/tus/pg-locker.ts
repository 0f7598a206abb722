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
//
// The pool is shared by every owner, so no owner may hold more than a share of it (`maxPerOwner`,
// counted from asking for a connection to letting go of the lock): one owner's many slow requests
// cannot leave another owner's HEAD or PATCH without a connection. A request that cannot have a
// connection in time gets a retryable error (423 or 503, with Retry-After), never a 500.
import { AppError } from '../errors.js';
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
  /** Connections one owner may hold or wait for at a time (default: half of `maxConnections`). */
  maxPerOwner?: number;
  /** How long a request waits for a pooled connection (the pool is full). */
  connectionTimeoutMs?: number;
}

/** A locker that can be told whose request a lock is for. */
export interface OwnerAwareLocker extends Locker {
  forOwner(ownerId: string): Locker;
}

export function isOwnerAware(locker: Locker): locker is OwnerAwareLocker {
  return typeof (locker as Partial<OwnerAwareLocker>).forOwner === 'function';
}

/** Every lock connection is in use: the server is busy, not broken. */
export const locksBusy = () =>
  new AppError(503, 'UPLOAD_LOCKS_BUSY', 'the server is handling too many uploads right now; retry shortly', {}, { 'Retry-After': '5' });

/** This owner already holds its share of lock connections (its own other requests). */
export const ownerLocksBusy = (limit: number) =>
  new AppError(
    423,
    'UPLOAD_LOCKED',
    `this owner's other upload requests hold ${limit} upload locks, the most one owner may hold; retry after one finishes`,
    { limit },
    { 'Retry-After': '2' },
  );

/** pg-pool's error when no connection became free within connectionTimeoutMillis. */
function isPoolTimeout(error: unknown): boolean {
  return error instanceof Error && /timeout exceeded when trying to connect/i.test(error.message);
}

export class PostgresLocker implements Locker {
  readonly acquireTimeoutMs: number;
  readonly retryIntervalMs: number;
  /** Locks held by this process, so a release request from any process reaches the holder. */
  readonly held = new Map<string, RequestRelease>();
  readonly pool: pg.Pool;
  readonly maxPerOwner: number;
  readonly connectionTimeoutMs: number;
  /** Connections each owner holds or waits for now. */
  private readonly perOwner = new Map<string, number>();
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
    const max = options.maxConnections ?? 100;
    this.maxPerOwner = Math.max(1, options.maxPerOwner ?? Math.floor(max / 2));
    this.connectionTimeoutMs = options.connectionTimeoutMs ?? 10_000;
    this.pool = new pg.Pool({
      connectionString,
      max,
      idleTimeoutMillis: 60_000,
      connectionTimeoutMillis: this.connectionTimeoutMs,
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

  /** The locker as seen by one owner's requests: their connections count against `maxPerOwner`. */
  forOwner(ownerId: string): Locker {
    return {
      newLock: (id) => new PostgresLock(this, id, ownerId),
    };
  }

  /** Connections `ownerId` holds or waits for. */
  ownerConnections(ownerId: string): number {
    return this.perOwner.get(ownerId) ?? 0;
  }

  /**
   * Takes one of the owner's share of connections, waiting (until `deadline` or `signal`) for one
   * of its own requests to let go; throws 423 UPLOAD_LOCKED when none does.
   */
  async takeOwnerSlot(ownerId: string, deadline: number, signal: AbortSignal): Promise<void> {
    for (;;) {
      const count = this.ownerConnections(ownerId);
      if (count < this.maxPerOwner) {
        this.perOwner.set(ownerId, count + 1);
        return;
      }
      if (signal.aborted) throw ERRORS.ERR_LOCK_TIMEOUT;
      if (Date.now() >= deadline) throw ownerLocksBusy(this.maxPerOwner);
      await sleep(this.retryIntervalMs, signal);
    }
  }

  releaseOwnerSlot(ownerId: string): void {
    const left = this.ownerConnections(ownerId) - 1;
    if (left > 0) this.perOwner.set(ownerId, left);
    else this.perOwner.delete(ownerId);
  }

  /** A pooled connection; a full pool is a retryable 503, not an unknown error. */
  async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (error) {
      if (isPoolTimeout(error)) throw locksBusy();
      throw error;
    }
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

  /** This lock holds one of its owner's share of connections (from lock() until unlock()). */
  private ownerSlot = false;

  constructor(
    private readonly locker: PostgresLocker,
    private readonly id: string,
    private readonly ownerId?: string,
  ) {}

  private releaseOwnerSlot(): void {
    if (!this.ownerSlot) return;
    this.ownerSlot = false;
    this.locker.releaseOwnerSlot(this.ownerId!);
  }

  private readonly onClientError = (error: Error) => {
    this.lost = true;
    this.locker.logger.warn({ err: error, uploadId: this.id }, 'lost the connection holding an upload lock');
  };

  async lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    const deadline = Date.now() + this.locker.acquireTimeoutMs;
    if (this.ownerId !== undefined) {
      // Waiting for the owner's own requests is bounded like waiting for the pool.
      await this.locker.takeOwnerSlot(this.ownerId, Math.min(deadline, Date.now() + this.locker.connectionTimeoutMs), signal);
      this.ownerSlot = true;
    }
    let client: pg.PoolClient;
    try {
      client = await this.locker.connect();
    } catch (error) {
      this.releaseOwnerSlot();
      throw error;
    }
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
      this.releaseOwnerSlot();
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
      this.releaseOwnerSlot();
    }
  }
}
