// `tusvault previews backfill`: previews for content that was ready before previews existed, or
// before an option change (tasks/make-previews.ts), enqueued in bounded batches for the worker.
import { PREVIEW_SETS } from '../../../tasks/make-previews.js';
import { backfillPreviewsBatch } from '../../db/previews.js';
import { EXIT, parseCommandArgs, positionals, UsageError, type Command } from '../command.js';
import { cliContext, withDatabase } from '../context.js';
import { printJson, printLines, progress } from '../format.js';

const help = `Usage: tusvault previews backfill [--batch N] [--retry-failed] [--dry-run] [--json]

Enqueues a make_previews job for every stored image, audio and FSEQ content that is missing a
preview of the current option set: content that was ready before previews existed, or before a
preview option changed (older previews stay until their content goes). Content is read in batches
of N blobs (default 500), one statement each; the worker makes the previews at its own pace. Run
it again at any time: content that has its previews (or a recorded reason why not) is skipped, and
a blob never has more than one pending job. Infected, unscanned, invalid and archived content
(a restore comes first) is left alone.

With --retry-failed, content whose previews of the current option set were recorded as failed is
made again too: those records are removed and the content enqueued. Use it once what was missing
is there (e.g. ffmpeg installed after AAC audio was recorded "no waveform decoder"); content that
fails again gets its reason recorded again.

Options:
  --batch N         blobs per batch (1–10000, default 500)
  --retry-failed    also re-make previews recorded as failed under the current options
  --dry-run         count and list what would be enqueued, enqueue or remove nothing
  --json            print the report as JSON`;

export interface BackfillReport {
  dryRun: boolean;
  scanned: number;
  enqueued: number;
  /** Every blob enqueued (or, in a dry run, that would be). */
  sha256s: string[];
  /** Of those, the ones whose failed previews were removed to be made again (--retry-failed). */
  retried: string[];
}

export const previewsCommand: Command = {
  name: 'previews',
  help,
  async run(args) {
    const { values, positionals: rest } = parseCommandArgs('previews', args, {
      batch: { type: 'string', default: '500' },
      'dry-run': { type: 'boolean', default: false },
      'retry-failed': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    });
    positionals('previews', rest, ['subcommand']);
    if (rest[0] !== 'backfill') throw new UsageError(`unknown subcommand ${JSON.stringify(rest[0])} (expected "backfill")`, 'previews');
    const batch = Number(values.batch);
    if (!Number.isInteger(batch) || batch < 1 || batch > 10_000) throw new UsageError('--batch must be a whole number from 1 to 10000', 'previews');
    const dryRun = values['dry-run'];
    const retryFailed = values['retry-failed'];

    const context = cliContext();
    const report = await withDatabase(context, async (database): Promise<BackfillReport> => {
      const found: BackfillReport = { dryRun, scanned: 0, enqueued: 0, sha256s: [], retried: [] };
      for (let after = ''; ; ) {
        const page = await backfillPreviewsBatch(database.db, PREVIEW_SETS, { after, batch, maxAttempts: context.config.jobMaxAttempts, dryRun, retryFailed });
        const due = [...new Set([...page.missing, ...page.failed])].sort();
        found.scanned += page.scanned;
        found.sha256s.push(...due);
        found.retried.push(...page.failed);
        if (!dryRun) found.enqueued += due.length;
        if (page.last === null || page.scanned < batch) break;
        after = page.last;
        progress(`previews backfill: ${found.scanned} blobs looked at, ${found.sha256s.length} missing previews${retryFailed ? ` (${found.retried.length} failed before)` : ''}`);
      }
      return found;
    });

    if (values.json) {
      printJson(report);
    } else {
      printLines([
        report.dryRun ? 'dry run: nothing was enqueued' : 'previews backfill done',
        `blobs looked at: ${report.scanned}`,
        `${report.dryRun ? 'would enqueue' : 'enqueued'}: ${report.sha256s.length}${report.sha256s.map((sha) => `\n  ${sha}`).join('')}`,
        ...(retryFailed ? [`of those, failed before and ${report.dryRun ? 'would be retried' : 'retried'}: ${report.retried.length}`] : []),
      ]);
    }
    return EXIT.ok;
  },
};
