// Applies drizzle-kit's migrations and graphile-worker's schema at start.
//
// drizzle-orm's own migrator is not safe when several processes start at once (each would try to
// apply the same migration). This one keeps drizzle's bookkeeping table and semantics, so
// drizzle-kit still sees the same history, but applies pending migrations inside one transaction
// that first takes a transaction-scoped advisory lock: concurrent starters queue up and the later
// ones find nothing left to do.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { Logger as GraphileLogger, runMigrations, type LogLevel } from 'graphile-worker';
import type { Sql } from './client.js';
import type { Logger } from '../logger.js';

/** drizzle/ at the project root, found from here whether running from src/ (tsx) or dist/. */
export const MIGRATIONS_FOLDER = (() => {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'drizzle');
    if (existsSync(path.join(candidate, 'meta', '_journal.json'))) return candidate;
  }
  throw new Error('the drizzle/ migrations folder was not found');
})();
// Any constant works; it only has to differ from other advisory lock users in the same database.
const MIGRATION_LOCK_KEY = 7_346_118_202;

export async function migrateDatabase(sql: Sql, url: string, logger: Logger): Promise<void> {
  const migrations = readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER });
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
    await tx`create schema if not exists drizzle`;
    await tx`create table if not exists drizzle.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)`;
    const [last] = await tx<{ created_at: string | null }[]>`
      select created_at from drizzle.__drizzle_migrations order by created_at desc limit 1`;
    const lastApplied = last?.created_at == null ? -1 : Number(last.created_at);
    for (const migration of migrations) {
      if (migration.folderMillis <= lastApplied) continue;
      for (const statement of migration.sql) {
        if (statement.trim()) await tx.unsafe(statement);
      }
      await tx`insert into drizzle.__drizzle_migrations (hash, created_at) values (${migration.hash}, ${migration.folderMillis})`;
      logger.info({ migration: migration.folderMillis }, 'applied database migration');
    }
  });
  // graphile-worker installs and upgrades its own schema; it tolerates concurrent starters.
  await runMigrations({ connectionString: url, logger: graphileLogger(logger) });
}

/** graphile-worker's logger interface, writing through our pino logger. */
export function graphileLogger(logger: Logger): GraphileLogger {
  const child = logger.child({ component: 'graphile-worker' });
  return new GraphileLogger(() => (level: LogLevel, message: string, meta?: unknown) => {
    const fields = meta && typeof meta === 'object' ? { meta } : {};
    switch (level) {
      case 'error':
        child.error(fields, message);
        break;
      case 'warning':
        child.warn(fields, message);
        break;
      case 'info':
        child.info(fields, message);
        break;
      default:
        child.debug(fields, message);
    }
  });
}
