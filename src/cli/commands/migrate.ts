// `tusvault migrate`: applies pending migrations (ours and graphile-worker's), as the server does at start.
import { migrateDatabase } from '../../db/migrate.js';
import { EXIT, parseCommandArgs, positionals, type Command } from '../command.js';
import { cliContext, openDatabase } from '../context.js';
import { progress } from '../format.js';

const help = `Usage: tusvault migrate

Applies the pending database migrations (drizzle/ and graphile-worker's schema) and exits.
Safe to run while servers run, and more than once: starters queue on a lock and later ones find
nothing to do. The server runs the same step at start.`;

export const migrateCommand: Command = {
  name: 'migrate',
  help,
  async run(args) {
    positionals('migrate', parseCommandArgs('migrate', args, {}).positionals, []);
    const context = cliContext();
    const open = await openDatabase(context);
    try {
      progress(`migrating ${open.where} …`);
      await migrateDatabase(open.database.sql, open.database.url, context.logger);
      progress('the database schema is up to date');
      return EXIT.ok;
    } finally {
      await open.close();
    }
  },
};
