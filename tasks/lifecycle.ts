// lifecycle: the periodic sweep (LIFECYCLE_SCHEDULE, hourly by default): expire abandoned uploads,
// purge rejected and quarantined files after their retention, remove unreferenced blobs and
// stored objects no record knows. The work itself lives in src/lifecycle (the admin cleanup
// endpoint runs the same code).
import type { Task } from 'graphile-worker';
import { parsePayload } from '../src/db/jobs.js';
import { runCleanup } from '../src/lifecycle/cleanup.js';
import { lifecycleRuns } from '../src/metrics.js';
import type { TaskDeps } from './deps.js';

export function lifecycle(deps: TaskDeps): Task<'lifecycle'> {
  return async (rawPayload) => {
    parsePayload('lifecycle', rawPayload);
    const report = await runCleanup(deps, deps.config, { dryRun: false }).catch((error: unknown) => {
      lifecycleRuns.inc({ outcome: 'error' });
      throw error;
    });
    lifecycleRuns.inc({ outcome: 'ok' });
    const summary = Object.fromEntries(
      (['expired', 'rejected', 'quarantined', 'blobs', 'orphans', 'tierMoves'] as const).map((k) => [k, { count: report[k].count, bytes: report[k].bytes }]),
    );
    deps.logger.info({ task: 'lifecycle', ...summary }, 'lifecycle sweep done');
  };
}
