// Runs the graphile-worker job queue in this process (ROLE=all or worker): the task list and the
// periodic schedule it is given (the composition root wires tasks/ in), and worker liveness for
// crash recovery.
import { EventEmitter } from 'node:events';
import { run, type Runner, type TaskList, type WorkerEvents } from 'graphile-worker';
import pg from 'pg';
import type postgres from 'postgres';
import { JOBS, jobKey } from '../db/jobs.js';
import { graphileLogger } from '../db/migrate.js';
import { startLiveness, unlockDeadWorkers, type Liveness } from '../db/workers.js';
import type { Logger } from '../logger.js';

/**
 * How often a worker process looks for jobs held by a dead worker. This runs beside the queue, not
 * as a job: while every slot is busy (two 1 GiB files being hashed), a queued reconcile job would
 * wait, and so would the dead worker's jobs. One cheap query when nothing is locked.
 */
const DEAD_WORKER_CHECK_MS = 5_000;

/**
 * Job fetching and completion in batches (graphile-worker's local queue and batched completes).
 * Per small upload, processing made three round trips to PostgreSQL: fetch the job, link the
 * bytes, delete the job. Fetching as many jobs as there are slots plus one at a time, and deleting
 * the jobs that finished within the same few milliseconds together, saves most of those round trips
 * (bench/tools/processing-cost.ts measures it).
 * The price is bounded and covered: jobs held in the local queue are locked by this pool (given
 * back on a clean stop, freed by the dead-worker check if the process dies), and a job completed
 * but not yet deleted when the process dies runs again — every task is idempotent.
 */
const COMPLETE_JOB_BATCH_DELAY_MS = 5;

export interface WorkerHandle {
  stop(): Promise<void>;
}

/**
 * graphile-worker events that keep `liveness` up to date. Jobs are locked in the name of the
 * worker pool (`locked_by` is the pool's id in graphile-worker 0.17, not its workers' ids), so the
 * pool's id is what must be held for its jobs to count as alive.
 */
export function livenessEvents(liveness: Liveness, logger: Logger): WorkerEvents {
  const events: WorkerEvents = new EventEmitter();
  events.on('pool:create', ({ workerPool }) => {
    liveness.register(workerPool.id).catch((error) => logger.warn({ err: error }, 'could not register worker liveness'));
  });
  return events;
}

export interface WorkerOptions {
  connectionString: string;
  concurrency: number;
  /** The tasks (tasks/registry.ts). */
  taskList: TaskList;
  /** The periodic schedule, in graphile-worker's crontab format. */
  crontab: string;
}

export async function startWorker(deps: { sql: postgres.Sql; logger: Logger }, options: WorkerOptions): Promise<WorkerHandle> {
  const liveness = await startLiveness(options.connectionString, deps.logger);
  const events = livenessEvents(liveness, deps.logger);

  // Our pool, not one graphile-worker makes: it takes its error listener off the pool it made before
  // ending it, so a connection the server ends meanwhile (a restart, a dropped database) would throw.
  const pool = new pg.Pool({ connectionString: options.connectionString, max: options.concurrency + 2 });
  pool.on('error', (error) => deps.logger.warn({ err: error }, 'an idle job-queue connection failed; the pool replaces it'));
  // A checked-out connection's error reaches its query too; the listener only keeps it from throwing.
  pool.on('connect', (client) => client.on('error', (error) => deps.logger.warn({ err: error }, 'a job-queue connection failed')));
  let runner: Runner;
  try {
    runner = await run({
      pgPool: pool,
      concurrency: options.concurrency,
      noHandleSignals: true,
      // New jobs arrive through LISTEN/NOTIFY at once; polling only picks up retries that
      // become due, so a second is plenty.
      pollInterval: 1000,
      taskList: options.taskList,
      crontab: options.crontab,
      logger: graphileLogger(deps.logger),
      events,
      preset: {
        worker: { localQueue: { size: options.concurrency + 1 }, completeJobBatchDelay: COMPLETE_JOB_BATCH_DELAY_MS },
      },
    });
  } catch (error) {
    await liveness.stop();
    await pool.end().catch(() => {});
    throw error;
  }
  // Repair what a previous crash left behind right away rather than at the next minute, and once
  // more shortly after. (Dead workers' jobs are also freed by the timer below, every 5 s, once
  // they pass unlockDeadWorkers' 10 s grace.)
  await runner.addJob('reconcile', {}, { jobKey: jobKey('reconcile', {}), maxAttempts: 1 });
  await runner.addJob('reconcile', {}, { jobKey: JOBS.reconcile.afterStartKey, maxAttempts: 1, runAt: new Date(Date.now() + 12_000) });
  let checking = false;
  const deadWorkerCheck = setInterval(() => {
    if (checking) return;
    checking = true;
    unlockDeadWorkers(deps.sql)
      .then((dead) => {
        if (dead.length > 0) deps.logger.warn({ workers: dead }, 'handed the jobs of dead workers back to the queue');
      })
      .catch((error: unknown) => deps.logger.warn({ err: error }, 'could not check for dead workers'))
      .finally(() => {
        checking = false;
      });
  }, DEAD_WORKER_CHECK_MS);
  deadWorkerCheck.unref();
  deps.logger.info({ concurrency: options.concurrency }, 'job worker started');

  return {
    async stop() {
      clearInterval(deadWorkerCheck);
      await runner.stop();
      await pool.end();
      await liveness.stop();
    },
  };
}
