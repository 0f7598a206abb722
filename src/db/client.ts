// Database access: postgres.js for the connection pool, drizzle-orm for typed queries.
import postgres from 'postgres';
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import * as schema from './schema.js';

export type Db = PostgresJsDatabase<typeof schema>;
export type Sql = postgres.Sql;

export interface Database {
  sql: Sql;
  /** Drizzle with prepared statements: every query of the application but ad-hoc reports. */
  db: Db;
  /**
   * Drizzle without prepared statements, for reports whose best plan depends on their parameters
   * (a time window of a day or of a year): planned anew on every call.
   */
  adhoc: Db;
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
  const db = drizzle(preparing(sql), { schema });
  return {
    sql,
    db,
    adhoc: drizzle(sql, { schema }),
    url,
    close: () => sql.end({ timeout: 5 }),
  };
}

/**
 * drizzle-orm runs every query through postgres.js's `unsafe()`, which does not prepare: each
 * statement was parsed, analysed and planned on every call, a large share of PostgreSQL's CPU per
 * small upload. Here every query with parameters is
 * a prepared statement, once per connection; postgres.js re-prepares by itself when a migration
 * invalidates one. Transactions and savepoints hand out clients that prepare too.
 */
function preparing<T extends postgres.Sql | postgres.TransactionSql>(client: T): T {
  const unsafe: postgres.Sql['unsafe'] = (query, args = [], options = {}) =>
    client.unsafe(query, args, { ...options, prepare: args.length > 0 });
  const inTransaction =
    (method: 'begin' | 'savepoint') =>
    (...args: unknown[]) => {
      const callback = args.pop() as (tx: postgres.TransactionSql) => unknown;
      const start = (client as unknown as Record<typeof method, (...a: unknown[]) => unknown>)[method]!;
      return start(...args, (tx: postgres.TransactionSql) => callback(preparing(tx)));
    };
  const overrides: Record<string, unknown> = {
    unsafe,
    begin: inTransaction('begin'),
    savepoint: inTransaction('savepoint'),
  };
  return new Proxy(client, {
    get: (target, property, receiver) =>
      typeof property === 'string' && property in overrides ? overrides[property] : Reflect.get(target, property, receiver),
  });
}
