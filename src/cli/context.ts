// What the commands share: the server's own configuration (same validation, same errors), a
// logger on stderr (stdout carries the command's answer), and the database and storage opened
// for one command and closed after it.
import { loadConfig, type Config } from '../config/index.js';
import { connect, type Database } from '../db/client.js';
import { startEmbeddedPostgres } from '../db/embedded.js';
import { createLogger, type Logger } from '../logger.js';
import { createStorage } from '../storage/index.js';
import type { ObjectStorage } from '../storage/types.js';

export interface CliContext {
  config: Config;
  logger: Logger;
}

/** Throws ConfigError (every problem at once) exactly as the server does. */
export function cliContext(env: Record<string, string | undefined> = process.env): CliContext {
  const config = loadConfig(env);
  // A command's own log lines are warnings unless LOG_LEVEL asks for more.
  const level = env.LOG_LEVEL ? config.logLevel : 'warn';
  return { config, logger: createLogger(level, { cli: true }, { format: config.logFormat, fd: 2 }) };
}

export interface OpenDatabase {
  database: Database;
  /** Where it is, for messages: the URL without its password, or the embedded cluster. */
  where: string;
  close(): Promise<void>;
}

export function describeDatabaseUrl(url: string): string {
  const parsed = new URL(url);
  parsed.password = '';
  return parsed.toString();
}

/** DATABASE_URL, or the embedded cluster under DATA_DIR (started if no server runs it). */
export async function openDatabase({ config, logger }: CliContext): Promise<OpenDatabase> {
  if (config.databaseUrl) {
    const database = connect(config.databaseUrl, { max: 2, applicationName: 'tusvault-cli' });
    return { database, where: describeDatabaseUrl(config.databaseUrl), close: () => database.close() };
  }
  const embedded = await startEmbeddedPostgres(config.dataDir, logger);
  const database = connect(embedded.url, { max: 2, applicationName: 'tusvault-cli' });
  return {
    database,
    where: `embedded PostgreSQL under ${config.dataDir}`,
    close: async () => {
      await database.close();
      await embedded.stop();
    },
  };
}

export async function withDatabase<T>(context: CliContext, use: (database: Database) => Promise<T>): Promise<T> {
  const open = await openDatabase(context);
  try {
    return await use(open.database);
  } finally {
    await open.close();
  }
}

export function openStorage({ config }: CliContext): Promise<ObjectStorage> {
  return createStorage(config);
}
