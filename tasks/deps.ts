// What the graphile-worker tasks need. A worker runs without a web server: nothing here may
// import HTTP code.
import type { Config } from '../src/config/index.js';
import type { Db, Sql } from '../src/db/client.js';
import type { FinalizedUpload, StepOptions } from '../src/db/processing.js';
import { finishToFinalSeconds } from '../src/metrics.js';
import type { Logger } from '../src/logger.js';
import type { ObjectStorage } from '../src/storage/types.js';
import type { Scanner } from '../src/scan/scanner.js';

export interface TaskDeps {
  db: Db;
  /** The raw postgres.js client, for the few queries drizzle does not express. */
  sql: Sql;
  storage: ObjectStorage;
  config: Config;
  logger: Logger;
  /** null when no scanner is configured: files get scan status `skipped`. */
  scanner: Scanner | null;
}

export function stepOptions(deps: TaskDeps): StepOptions {
  return {
    scanner: deps.scanner !== null,
    scanRequired: deps.config.scanRequired,
    maxAttempts: deps.config.jobMaxAttempts,
  };
}

/** graphile-worker counts the attempt in progress: this is the last one when they are equal. */
export function isLastAttempt(job: { attempts: number; max_attempts: number }): boolean {
  return job.attempts >= job.max_attempts;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Records how long finished uploads took from their last byte to their final status. */
export function observeFinal(rows: FinalizedUpload[] | FinalizedUpload | null): FinalizedUpload[] {
  const list = rows === null ? [] : Array.isArray(rows) ? rows : [rows];
  const now = Date.now();
  for (const row of list) {
    if (row.completedAt) finishToFinalSeconds.observe({ status: row.status }, (now - row.completedAt.getTime()) / 1000);
  }
  return list;
}
