// The PostgreSQL server tests use: DATABASE_URL when set, else an embedded cluster.
import { chmod, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';

export interface TestPostgres {
  url: string;
  stop(): Promise<void>;
}

export async function startTestPostgres(): Promise<TestPostgres> {
  const given = process.env.DATABASE_URL;
  if (given) return { url: given, stop: async () => {} };
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tusvault-test-pg-'));
  // As root, postgres runs as the postgres user, which must be able to enter the directory.
  await chmod(dir, 0o755);
  const embedded = await startEmbeddedPostgres(dir, pino({ level: 'warn' }));
  return { url: embedded.url, stop: embedded.stop };
}
