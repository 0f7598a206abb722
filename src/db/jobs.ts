// Enqueueing graphile-worker jobs from SQL, so a job is added in the same transaction as the
// record change that needs it: either both happen or neither does.
import { sql, type SQL } from 'drizzle-orm';
import type { Executor } from './tx.js';

export const TASKS = {
  processUpload: 'process_upload',
  extractMetadata: 'extract_metadata',
  scanBlob: 'scan_blob',
  concatUpload: 'concat_upload',
  reconcile: 'reconcile',
  lifecycle: 'lifecycle',
} as const;
export type TaskName = (typeof TASKS)[keyof typeof TASKS];

export interface EnqueueOptions {
  /** At most one pending job per key: enqueueing again replaces the pending one. */
  jobKey?: string;
  maxAttempts?: number;
  runAt?: Date;
  /** 'unsafe_dedupe' keeps an existing job with that key, even a running one. */
  jobKeyMode?: 'replace' | 'preserve_run_at' | 'unsafe_dedupe';
}

/** The add_job call as an SQL expression, for statements that enqueue from a CTE. */
export function addJob(task: TaskName, payload: Record<string, unknown>, options: EnqueueOptions = {}): SQL {
  return sql`graphile_worker.add_job(
      identifier := ${task},
      payload := ${JSON.stringify(payload)}::json,
      run_at := ${options.runAt?.toISOString() ?? null}::timestamptz,
      max_attempts := ${options.maxAttempts ?? null}::int,
      job_key := ${options.jobKey ?? null}::text,
      job_key_mode := ${options.jobKeyMode ?? 'replace'}::text
    )`;
}

export async function enqueueJob(
  tx: Executor,
  task: TaskName,
  payload: Record<string, unknown>,
  options: EnqueueOptions = {},
): Promise<void> {
  await tx.execute(sql`select ${addJob(task, payload, options)}`);
}
