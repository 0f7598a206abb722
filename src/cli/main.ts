// The `tusvault` command line: `tusvault <command> [options]`. Every command reads the server's
// configuration from the environment, validated exactly as the server validates it.
import { ConfigError } from '../config/index.js';
import { AppError } from '../errors.js';
import { EXIT, UsageError, type Command } from './command.js';

/** Each command is loaded when it runs: `token` need not load the server. */
interface Entry {
  name: string;
  summary: string;
  load(): Promise<Command>;
}

export const COMMANDS: Entry[] = [
  { name: 'serve', summary: 'run the server (what npm start runs)', load: async () => (await import('./commands/serve.js')).serveCommand },
  { name: 'migrate', summary: 'apply pending database migrations', load: async () => (await import('./commands/migrate.js')).migrateCommand },
  {
    name: 'lifecycle',
    summary: 'run the lifecycle cleanup now (--dry-run: show what it would do)',
    load: async () => (await import('./commands/lifecycle.js')).lifecycleCommand,
  },
  { name: 'reconcile', summary: 'repair stuck uploads and jobs now', load: async () => (await import('./commands/reconcile.js')).reconcileCommand },
  { name: 'quota', summary: "show or set an owner's quota", load: async () => (await import('./commands/quota.js')).quotaCommand },
  { name: 'files', summary: "list an owner's files (ls) or show one (show <id>)", load: async () => (await import('./commands/files.js')).filesCommand },
  { name: 'previews', summary: 'enqueue missing previews of stored content (backfill)', load: async () => (await import('./commands/previews.js')).previewsCommand },
  { name: 'token', summary: 'mint a JWT with the configured HS256 secret (development)', load: async () => (await import('./commands/token.js')).tokenCommand },
  { name: 'check', summary: 'check config, database, storage and clamd (exit code tells)', load: async () => (await import('./commands/check.js')).checkCommand },
];

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: tusvault <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Settings come from the environment, as for the server (README.md, Configuration).',
    '`tusvault <command> --help` describes a command.',
  ].join('\n');
}

/** Postgres' "undefined table" (drizzle wraps it as the cause): the database was never migrated. */
function isMissingSchema(error: unknown): boolean {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.code === '42P01') return true;
  }
  return false;
}

/** Runs one command line and returns its exit code; never throws. */
export async function runCli(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? COMMANDS.find((c) => c.name === args[0]) : undefined;
    process.stdout.write(`${topic ? (await topic.load()).help : overview()}\n`);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    process.stderr.write(`tusvault: unknown command ${JSON.stringify(name)}\n\n${overview()}\n`);
    return EXIT.usage;
  }
  try {
    const command = await entry.load();
    if (args.includes('--help') || args.includes('-h')) {
      process.stdout.write(`${command.help}\n`);
      return EXIT.ok;
    }
    return await command.run(args);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`tusvault ${error.command ?? name}: ${error.message}\nRun \`tusvault ${name} --help\` for its usage.\n`);
      return EXIT.usage;
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return EXIT.config;
    }
    if (error instanceof AppError) {
      process.stderr.write(`tusvault ${name}: ${error.message} (${error.code})\n`);
      return EXIT.failed;
    }
    if (isMissingSchema(error)) {
      process.stderr.write(`tusvault ${name}: the database has no tusvault schema yet: run \`tusvault migrate\` (or start the server) first\n`);
      return EXIT.failed;
    }
    process.stderr.write(`tusvault ${name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return EXIT.failed;
  }
}

/** Runs the command line and ends the process with its exit code (pools and timers included). */
export async function main(argv: string[] = process.argv.slice(2)): Promise<never> {
  const code = await runCli(argv);
  // Let stdout drain before exiting: piped output is written asynchronously.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  process.exit(code);
}
