// `tusvault check`: is this configuration usable? Config, database, storage and clamd, each probed
// with a bound; the exit code says whether all passed.
import { EXIT, parseCommandArgs, positionals, type Command } from '../command.js';
import { probe } from '../../probe.js';
import { configuredScanner } from '../../scan/configured.js';
import { cliContext, openDatabase, openStorage } from '../context.js';
import { printLines } from '../format.js';

const help = `Usage: tusvault check

Validates the configuration (as the server does at start) and checks that the database, the
storage and the virus scanner (clamd, when configured) answer. Prints one line per check.
Exit code: 0 all passed, 1 something is unreachable, 78 the configuration is invalid.`;

const TIMEOUT_MS = 10_000;

type Outcome = { status: 'ok' | 'FAIL' | 'skip'; detail: string };

async function bounded(run: () => Promise<string>): Promise<Outcome> {
  const outcome = await probe(run, TIMEOUT_MS);
  return outcome.ok ? { status: 'ok', detail: outcome.value } : { status: 'FAIL', detail: outcome.error };
}

export const checkCommand: Command = {
  name: 'check',
  help,
  async run(args) {
    positionals('check', parseCommandArgs('check', args, {}).positionals, []);
    const context = cliContext();
    const { config } = context;
    const results: Array<[string, Outcome]> = [['config', { status: 'ok', detail: `valid (AUTH_MODE=${config.auth.mode}, STORAGE=${config.storage})` }]];

    results.push([
      'database',
      await bounded(async () => {
        const open = await openDatabase(context);
        try {
          const [row] = await open.database.sql<{ version: string }[]>`select current_setting('server_version') as version`;
          return `${open.where} (PostgreSQL ${row!.version})`;
        } finally {
          await open.close();
        }
      }),
    ]);
    results.push([
      'storage',
      await bounded(async () => {
        await (await openStorage(context)).ping();
        return config.storage === 's3' ? `s3 bucket ${config.s3.bucket}${config.s3.endpoint ? ` at ${config.s3.endpoint}` : ''}` : `files under ${config.fileStorageDir}`;
      }),
    ]);
    const scanner = configuredScanner(config);
    const where = config.clamav.socket ?? `${config.clamav.host}:${config.clamav.port}`;
    results.push([
      'clamd',
      scanner
        ? await bounded(async () => {
            await scanner.ping();
            return `answers at ${where}`;
          })
        : { status: 'skip', detail: 'not configured (CLAMAV_HOST / CLAMAV_SOCKET): files get scan status "skipped"' },
    ]);

    printLines(results.map(([name, { status, detail }]) => `${status.padEnd(4)}  ${name.padEnd(8)}  ${detail}`));
    return results.some(([, outcome]) => outcome.status === 'FAIL') ? EXIT.failed : EXIT.ok;
  },
};
