// `tusvault lifecycle [--dry-run]`: the lifecycle sweep the hourly job runs (src/lifecycle/cleanup.ts).
import { runCleanup, type CategoryReport, type CleanupCategory, type CleanupReport } from '../../lifecycle/cleanup.js';
import { EXIT, parseCommandArgs, positionals, type Command } from '../command.js';
import { cliContext, openStorage, withDatabase } from '../context.js';
import { bytes, printJson, printLines, progress, withProgress } from '../format.js';

const help = `Usage: tusvault lifecycle [--dry-run] [--json]

Runs the lifecycle sweep now: expires abandoned uploads, purges rejected and quarantined files
past their retention (REJECTED_RETENTION, QUARANTINE_RETENTION), removes unreferenced blobs and
stored objects no record knows (older than ORPHAN_GRACE), and moves cold content to colder
storage classes (TIER_INFREQUENT_AFTER, TIER_ARCHIVE_AFTER). Every removal and move is audited.

Options:
  --dry-run   list exactly what a run would remove now, and remove nothing
  --json      print the report as JSON

Progress goes to stderr (a line per category as it is done, and one every few seconds while the
sweep runs); the report to stdout.`;

const CATEGORIES: Array<[Exclude<CleanupCategory, 'tierMoves'>, string]> = [
  ['expired', 'expired uploads'],
  ['rejected', 'rejected files past retention'],
  ['quarantined', 'infected files past retention'],
  ['blobs', 'unreferenced blobs'],
  ['orphans', 'orphaned stored objects'],
  ['webhookEvents', 'delivered webhook events past retention'],
];

const phaseLabel = (category: CleanupCategory) => CATEGORIES.find(([key]) => key === category)?.[1] ?? 'storage tier moves';

/** A progress line per category as the sweep finishes it: "expired uploads: 3 removed (1.2 MB) in 0.4 s". */
function phasePrinter(dryRun: boolean): (category: CleanupCategory, done: CategoryReport) => void {
  let since = Date.now();
  return (category, done) => {
    const verb = category === 'tierMoves' ? (dryRun ? 'to move' : 'moved') : dryRun ? 'to remove' : 'removed';
    const size = category === 'webhookEvents' ? '' : ` (${bytes(done.bytes)})`;
    progress(`${phaseLabel(category)}: ${done.count} ${verb}${size} in ${((Date.now() - since) / 1000).toFixed(1)} s`);
    since = Date.now();
  };
}

export function describeCleanup(report: CleanupReport): string[] {
  const verb = report.dryRun ? 'would remove' : 'removed';
  const lines = [report.dryRun ? 'dry run: nothing was changed' : 'lifecycle sweep done'];
  for (const [key, label] of CATEGORIES) {
    const category: CategoryReport = report[key];
    lines.push(`${label}: ${verb} ${category.count} (${bytes(category.bytes)})`);
    for (const id of category.ids) lines.push(`  ${id}`);
  }
  const { tierMoves } = report;
  lines.push(`storage tier moves: ${report.dryRun ? 'would move' : 'moved'} ${tierMoves.count} (${bytes(tierMoves.bytes)})`);
  for (const move of tierMoves.moves) lines.push(`  ${move.sha256} ${move.from} → ${move.to}`);
  return lines;
}

export const lifecycleCommand: Command = {
  name: 'lifecycle',
  help,
  async run(args) {
    const { values, positionals: rest } = parseCommandArgs('lifecycle', args, {
      'dry-run': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    });
    positionals('lifecycle', rest, []);
    const context = cliContext();
    const storage = await openStorage(context);
    const report = await withDatabase(context, (database) =>
      withProgress(
        values['dry-run'] ? 'planning the lifecycle sweep (dry run)' : 'running the lifecycle sweep',
        () =>
          runCleanup({ db: database.db, storage, logger: context.logger }, context.config, {
            dryRun: values['dry-run'],
            onPhase: phasePrinter(values['dry-run']),
          }),
        (done) => `${CATEGORIES.reduce((n, [key]) => n + done[key].count, 0)} ${done.dryRun ? 'to remove' : 'removed'}, ${done.tierMoves.count} tier ${done.dryRun ? 'moves planned' : 'moves'}`,
      ),
    );
    if (values.json) printJson(report);
    else printLines(describeCleanup(report));
    return EXIT.ok;
  },
};
