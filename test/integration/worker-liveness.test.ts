// Worker liveness against real graphile-worker and PostgreSQL: a live worker's long job is never
// handed back to the queue (it would run twice at once), and once the worker's session is gone
// its jobs are handed back within seconds instead of graphile-worker's four hours.
import { run, type Runner } from 'graphile-worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphileLogger, migrateDatabase } from '../../src/db/migrate.js';
import { startLiveness, unlockDeadWorkers, type Liveness } from '../../src/db/workers.js';
import { createLogger } from '../../src/logger.js';
import { livenessEvents } from '../../src/worker/runner.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const logger = createLogger('warn');

describe('worker liveness', () => {
  let testDb: TestDatabase;
  let liveness: Liveness | undefined;
  let runner: Runner | undefined;
  let finishJob: () => void = () => {};

  beforeAll(async () => {
    testDb = await createTestDatabase();
    await migrateDatabase(testDb.sql, testDb.url, logger);
  });
  afterAll(async () => {
    finishJob();
    await runner?.stop();
    await liveness?.stop();
    await testDb?.drop();
  });

  async function lockedBy(): Promise<string | null | undefined> {
    const [job] = await testDb.sql<{ locked_by: string | null }[]>`select locked_by from graphile_worker.jobs`;
    return job?.locked_by;
  }

  it('keeps a live worker’s running job locked, and frees it once the worker’s session is gone', async () => {
    liveness = await startLiveness(testDb.url, logger);
    let markStarted: () => void = () => {};
    const started = new Promise<void>((resolve) => (markStarted = resolve));
    const blocked = new Promise<void>((resolve) => (finishJob = resolve));
    runner = await run({
      connectionString: testDb.url,
      concurrency: 2,
      noHandleSignals: true,
      pollInterval: 200,
      logger: graphileLogger(logger),
      events: livenessEvents(liveness, logger),
      taskList: {
        slow: async () => {
          markStarted();
          await blocked;
        },
      },
    });
    await runner.addJob('slow', {});
    await started;
    const holder = await lockedBy();
    expect(holder).toMatch(/^pool-/);

    // Locked for over a second, and its worker alive: a check with a 1 s grace leaves it alone.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await unlockDeadWorkers(testDb.sql, 1)).toEqual([]);
    expect(await lockedBy()).toBe(holder);

    // The worker's liveness session ends, as it does when its process dies: the job is freed.
    await liveness.stop();
    expect(await unlockDeadWorkers(testDb.sql, 1)).toEqual([holder]);
    expect(await lockedBy()).toBeNull();
  });
});
