// `tusvault reconcile`: the repair pass the worker runs every minute (tasks/reconcile.ts).
import { reconcile, type ReconcilePhase } from '../../../tasks/reconcile.js';
import { EXIT, parseCommandArgs, positionals, type Command } from '../command.js';
import { configuredScanner } from '../../scan/configured.js';
import { cliContext, openStorage, withDatabase } from '../context.js';
import { printJson, printLines, progress, withProgress } from '../format.js';

const help = `Usage: tusvault reconcile [--json]

Repairs what slipped through the normal path, as the worker does every minute: hands jobs locked
by dead workers back to the queue, finishes uploads whose bytes all arrived but whose finish never
ran, and re-enqueues processing that has no job left (all older than RECONCILE_AFTER).

Options:
  --json   print the report as JSON

Progress goes to stderr (a line per pass as it is done, and one every few seconds while it runs);
the report to stdout.`;

const PHASE_LABELS: Record<ReconcilePhase, string> = {
  unlockedWorkers: 'dead workers unlocked',
  finished: 'uploads finished',
  concatenations: 'concatenations re-enqueued',
  processing: 'processing re-enqueued',
};

/** A progress line per pass as the reconciler finishes it: "uploads finished: 2 in 0.1 s". */
function phasePrinter(): (phase: ReconcilePhase, repaired: number) => void {
  let since = Date.now();
  return (phase, repaired) => {
    progress(`${PHASE_LABELS[phase]}: ${repaired} in ${((Date.now() - since) / 1000).toFixed(1)} s`);
    since = Date.now();
  };
}

export const reconcileCommand: Command = {
  name: 'reconcile',
  help,
  async run(args) {
    const { values, positionals: rest } = parseCommandArgs('reconcile', args, { json: { type: 'boolean', default: false } });
    positionals('reconcile', rest, []);
    const context = cliContext();
    const storage = await openStorage(context);
    const report = await withDatabase(context, (database) =>
      withProgress(
        'reconciling',
        () =>
          reconcile(
            { db: database.db, sql: database.sql, storage, config: context.config, logger: context.logger, scanner: configuredScanner(context.config) },
            { onPhase: phasePrinter() },
          ),
        (done) => `${done.unlockedWorkers.length + done.finished.length + done.requeued.length} repaired`,
      ),
    );
    if (values.json) {
      printJson(report);
    } else {
      printLines([
        `dead workers unlocked: ${report.unlockedWorkers.length}${report.unlockedWorkers.map((w) => `\n  ${w}`).join('')}`,
        `uploads finished: ${report.finished.length}${report.finished.map((id) => `\n  ${id}`).join('')}`,
        `processing re-enqueued: ${report.requeued.length}${report.requeued.map((id) => `\n  ${id}`).join('')}`,
      ]);
    }
    return EXIT.ok;
  },
};
