// Worker liveness through PostgreSQL sessions.
//
// graphile-worker only frees the jobs of a crashed worker after four hours. Each of our worker
// processes holds a session advisory lock per graphile worker id for as long as it lives (its
// connection dies with it), so the reconciler can tell, within seconds, which locked jobs belong
// to a worker that is gone, and hand them back to the queue.
//
// The session is a node-postgres client: postgres.js 3.4 throws an uncatchable error when the
// server of a long-held reserved connection restarts (porsager/postgres#1208); node-postgres
// reports it as an 'error' event, after which we reconnect and take the locks again.
import pg from 'pg';
import type postgres from 'postgres';
import type { Logger } from '../logger.js';

const lockKey = (workerId: string) => `graphile-worker:${workerId}`;
const RECONNECT_MS = 2000;

export interface Liveness {
  register(workerId: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startLiveness(connectionString: string, logger: Logger): Promise<Liveness> {
  const workerIds = new Set<string>();
  let client: pg.Client | null = null;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;

  // One query at a time on the session (node-postgres deprecates overlapping queries).
  let queue: Promise<unknown> = Promise.resolve();
  const lock = (target: pg.Client, id: string) => {
    const next = queue.then(() => target.query('select pg_try_advisory_lock(hashtextextended($1, 0))', [lockKey(id)]));
    queue = next.catch(() => {});
    return next;
  };

  async function connect(): Promise<void> {
    const next = new pg.Client({ connectionString, application_name: 'tusvault-liveness' });
    next.on('error', (error) => {
      // The server went away (restart, network): the locks went with the session.
      logger.warn({ err: error }, 'worker liveness connection lost; reconnecting');
      if (client === next) client = null;
      next.end().catch(() => {});
      scheduleReconnect();
    });
    await next.connect();
    for (const id of workerIds) await lock(next, id);
    client = next;
  }

  function scheduleReconnect(): void {
    if (stopped || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      connect().then(
        () => logger.info('worker liveness connection re-established'),
        (error: unknown) => {
          logger.warn({ err: error }, 'worker liveness connection is down');
          scheduleReconnect();
        },
      );
    }, RECONNECT_MS);
    retry.unref();
  }

  await connect();

  return {
    async register(workerId: string) {
      workerIds.add(workerId);
      if (client) await lock(client, workerId);
    },
    async stop() {
      stopped = true;
      clearTimeout(retry);
      const current = client;
      client = null;
      // Ending the session releases its advisory locks.
      await current?.end().catch(() => {});
    },
  };
}

/** Frees jobs locked by graphile workers whose process is gone; returns their worker ids. */
export async function unlockDeadWorkers(sql: postgres.Sql, minLockedSeconds = 10): Promise<string[]> {
  const lockers = await sql<{ locked_by: string }[]>`
    select distinct locked_by from graphile_worker.jobs
    where locked_by is not null and locked_at < now() - make_interval(secs => ${minLockedSeconds})`;
  if (lockers.length === 0) return [];
  // A live worker's process holds its lock: if we can take it, nobody holds it. Probe inside one
  // transaction (one session), releasing every lock we take.
  const dead = await sql.begin(async (tx) => {
    const found: string[] = [];
    for (const { locked_by: workerId } of lockers) {
      const [row] = await tx<{ free: boolean }[]>`select pg_try_advisory_lock(hashtextextended(${lockKey(workerId)}, 0)) as free`;
      if (row?.free) {
        found.push(workerId);
        await tx`select pg_advisory_unlock(hashtextextended(${lockKey(workerId)}, 0))`;
      }
    }
    return found;
  });
  if (dead.length > 0) await sql`select graphile_worker.force_unlock_workers(${dead}::text[])`;
  return dead;
}
