// `tusvault reconcile`: the repair pass the worker runs every minute (tasks/reconcile.ts).
import { reconcile } from '../../../tasks/reconcile.js';
import { EXIT, parseCommandArgs, positionals, type Command } from '../command.js';
import { configuredScanner } from '../../scan/configured.js';
import { cliContext, openStorage, withDatabase } from '../context.js';
import { printJson, printLines, withProgress } from '../format.js';

const help = `Usage: tusvault reconcile [--json]

Repairs what slipped through the normal path, as the worker does every minute: hands jobs locked
by dead workers back to the queue, finishes uploads whose bytes all arrived but whose finish never
ran, and re-enqueues processing that has no job left (all older than RECONCILE_AFTER).

Options:
  --json   print the report as JSON

Progress goes to stderr (a line every few seconds while it runs); the report to stdout.`;

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
        () => reconcile({ db: database.db, sql: database.sql, storage, config: context.config, logger: context.logger, scanner: configuredScanner(context.config) }),
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
