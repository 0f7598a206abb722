// Database access: postgres.js for the connection pool, drizzle-orm for typed queries.
import postgres from 'postgres';
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import * as schema from './schema.js';

export type Db = PostgresJsDatabase<typeof schema>;
export type Sql = postgres.Sql;

export interface Database {
  sql: Sql;
  db: Db;
  url: string;
  close(): Promise<void>;
}

export function connect(url: string, options: { max?: number; applicationName?: string } = {}): Database {
  const sql = postgres(url, {
    max: options.max ?? 20,
    // Connections that sit idle are closed, so a quiet server does not hold slots forever.
    idle_timeout: 60,
    connect_timeout: 10,
    // While the database is down a request waits for the next connection attempt: keep that
    // short (postgres.js grows it to 20 s by default), so clients get a quick 503 to retry.
    backoff: (attempt: number) => Math.min(0.05 * 2 ** attempt, 1),
    onnotice: () => {},
    connection: { application_name: options.applicationName ?? 'tusvault' },
    // int8 columns (sizes, counters) come back as JS numbers: files are far below 2^53 bytes.
    types: {
      int8: { to: 20, from: [20], serialize: (v: number) => String(v), parse: (v: string) => Number(v) },
    },
    transform: { undefined: null },
  });
  const db = drizzle(sql, { schema });
  return {
    sql,
    db,
    url,
    close: () => sql.end({ timeout: 5 }),
  };
}
