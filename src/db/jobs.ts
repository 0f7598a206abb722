// The job registry: every graphile-worker task by name, the payload it takes (a zod schema: the
// task parses its payload with it, enqueuers are typed by it) and its job key. Nothing else writes
// a task name, a job key or a payload shape out. tasks/registry.ts binds each name to its task.
//
// It lives here, beside the SQL enqueuer, because the records code enqueues jobs in the same
// transaction as the change that needs them (finishing an upload, linking a blob, creating a final
// upload): `src/db` must know the jobs, and may not import `tasks/`. It holds no task code.
//
// Jobs are added in SQL (graphile_worker.add_job / add_jobs), so a job is added in the same
// transaction as the record change that needs it: either both happen or neither does. Jobs are
// read back only through graphile-worker's public `graphile_worker.jobs` view.
import { sql, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import { KINDS } from '../config/index.js';
import type { Executor } from './tx.js';

const uploadId = z.string().regex(/^[0-9a-f]{32}$/);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/** An upload's content digests, hex (what `process_upload` may be handed instead of hashing). */
export const ContentDigest = z.object({ sha256, md5: z.string().regex(/^[0-9a-f]{32}$/) });
export type ContentDigest = z.infer<typeof ContentDigest>;

/**
 * What a large upload's first 64 KiB said, summarised as they arrived (src/storage/digesting-store.ts):
 * the magic-byte sniff and, for FSEQ content, its header parsed (or why it does not parse).
 * Processing then reads none of the bytes back; the header's size check waits for the stored size.
 */
export const FirstBytes = z.object({
  sniffed: z.object({ format: z.string(), mime: z.string(), kinds: z.array(z.enum(KINDS)) }).nullable(),
  fseq: z.record(z.string(), z.unknown()).nullable(),
  fseqError: z.string().nullable(),
});
export type FirstBytes = z.infer<typeof FirstBytes>;

/** What processing needs of an upload; none of it changes once the upload is `processing`. */
export const StoredUpload = z.object({
  storageKey: z.string(),
  size: z.number().int().nonnegative().nullable(),
  kind: z.enum(KINDS),
  mimeType: z.string().nullable(),
});
export type StoredUpload = z.infer<typeof StoredUpload>;

/** A key of the form `prefix:<payload[field]>`; `sql` builds the same key from an SQL value. */
function keyedBy<F extends string>(prefix: string, field: F) {
  const key = (payload: { [K in F]: string }): string => `${prefix}:${payload[field]}`;
  return Object.assign(key, { sql: (value: SQL): SQL => sql`(${prefix + ':'}::text || ${value})` });
}

/** One job at a time for the whole queue: a fixed key. */
function single(name: string) {
  return (): string => name;
}

/** No payload (a cron job's carries graphile-worker's `_cron`, which the task ignores). */
const Empty = z.object({});

export const JOBS = {
  /** The first step after the last byte arrives: digest, type check, link to a blob. */
  process_upload: {
    payload: z.object({
      uploadId,
      // The upload's facts (StoredUpload), written by the statement that finished it (jobs
      // enqueued elsewhere, or before this field existed, have only the id). They let the first
      // attempt skip reading the record; the record stays the truth.
      upload: z.unknown().optional(),
      // SHA-256 and MD5 of every byte, hashed as they arrived (src/storage/digesting-store.ts):
      // processing then does not read the bytes back to hash them. Absent: it hashes them itself.
      digest: ContentDigest.nullable().optional(),
      // The first bytes summarised on arrival (with `digest` only): processing reads nothing back.
      first: FirstBytes.nullable().optional(),
    }),
    key: keyedBy('process', 'uploadId'),
    /**
     * The payload built in SQL from an `uploads` row (`row`), for the statement that finishes
     * uploads; `digest` names the row's columns holding the arrival digest (null when unknown).
     */
    payloadFromRow: (row: SQL, digest: { sha256: SQL; md5: SQL; first?: SQL }): SQL => sql`json_build_object(
      'uploadId', ${row}.id,
      'upload', json_build_object('storageKey', ${row}.storage_key, 'size', ${row}.size, 'kind', ${row}.kind, 'mimeType', ${row}.mime_type),
      'digest', case when ${digest.sha256} is null then null else json_build_object('sha256', ${digest.sha256}, 'md5', ${digest.md5}) end,
      'first', case when ${digest.sha256} is null then null else ${digest.first ?? sql`null`}::json end)`,
  },
  /** Metadata of one blob, computed once for every upload of the same bytes. */
  extract_metadata: { payload: z.object({ sha256 }), key: keyedBy('metadata', 'sha256') },
  /** The virus-scan verdict of one blob. */
  scan_blob: { payload: z.object({ sha256 }), key: keyedBy('scan', 'sha256') },
  /** Previews of one blob (light map, ...), once its verdict is clean or skipped. */
  make_previews: { payload: z.object({ sha256 }), key: keyedBy('previews', 'sha256') },
  /** Assembles a final upload (tus concatenation) from its partials once all are complete. */
  concat_upload: { payload: z.object({ uploadId }), key: keyedBy('concat', 'uploadId') },
  /** Repairs what slipped through (every minute and at worker start). */
  reconcile: {
    payload: Empty,
    key: single('reconcile'),
    /** The extra pass a starting worker schedules shortly after start (not to replace the first). */
    afterStartKey: 'reconcile-after-start',
  },
  /** The periodic sweep: expiry, retention purges, orphans. */
  lifecycle: { payload: Empty, key: single('lifecycle') },
  /** Polls the restore of an archived blob until its copy is readable (src/db/tiers.ts enqueues it). */
  restore_blob: { payload: z.object({ sha256 }), key: keyedBy('restore', 'sha256') },
  /**
   * Sends one upload's pending webhook deliveries to one endpoint, in event order. Enqueued in SQL
   * by the outbox trigger and `webhook_enqueue()` (drizzle/0004_webhook_outbox.sql), which build
   * this payload and this key, and use the key as the job's queue too (one at a time per key).
   */
  deliver_webhook: {
    payload: z.object({ endpointId: z.uuid(), uploadId: z.string().min(1) }),
    key: (payload: { endpointId: string; uploadId: string }): string => `webhook:${payload.endpointId}:${payload.uploadId}`,
  },
} as const;

/**
 * The blob kinds make_previews has a plan for (tasks/make-previews.ts PLANS): only their new blobs
 * get the job, as a job for any other kind would only look the blob up and return.
 */
export const PREVIEWED_KINDS = ['fseq', 'audio', 'image'] as const satisfies readonly (typeof KINDS)[number][];
export type PreviewedKind = (typeof PREVIEWED_KINDS)[number];
export const isPreviewed = (kind: string): kind is PreviewedKind => (PREVIEWED_KINDS as readonly string[]).includes(kind);

export type TaskName = keyof typeof JOBS;
export const TASK_NAMES = Object.keys(JOBS) as TaskName[];
/** What an enqueuer writes for a task. */
export type JobPayload<T extends TaskName> = z.input<(typeof JOBS)[T]['payload']>;
/** What a task gets once its payload is parsed. */
export type ParsedPayload<T extends TaskName> = z.output<(typeof JOBS)[T]['payload']>;

declare global {
  namespace GraphileWorker {
    // graphile-worker's task typing (Task<name>, TaskList, addJob) from the registry.
    interface Tasks extends RegistryPayloads {}
  }
}
type RegistryPayloads = { [T in TaskName]: JobPayload<T> };

/** The job key of a task's job: at most one pending job per key. */
export function jobKey<T extends TaskName>(task: T, payload: JobPayload<T>): string {
  return (JOBS[task].key as (payload: JobPayload<T>) => string)(payload);
}

/** Parses a job's payload with its task's schema (a task calls this first). */
export function parsePayload<T extends TaskName>(task: T, payload: unknown): ParsedPayload<T> {
  return JOBS[task].payload.parse(payload) as ParsedPayload<T>;
}

export interface EnqueueOptions {
  maxAttempts?: number;
  runAt?: Date;
  /** 'replace' (default) replaces a pending job with the same key; 'unsafe_dedupe' keeps it, even a running one. */
  jobKeyMode?: 'replace' | 'preserve_run_at' | 'unsafe_dedupe';
}

/** The add_job call as an SQL expression, for statements that enqueue from a CTE. */
export function addJob<T extends TaskName>(task: T, payload: JobPayload<T>, options: EnqueueOptions = {}): SQL {
  const parsed = JOBS[task].payload.parse(payload);
  return sql`graphile_worker.add_job(
      identifier := ${task}::text,
      payload := ${JSON.stringify(parsed)}::json,
      run_at := ${options.runAt?.toISOString() ?? null}::timestamptz,
      max_attempts := ${options.maxAttempts ?? null}::int,
      job_key := ${jobKey(task, payload)}::text,
      job_key_mode := ${options.jobKeyMode ?? 'replace'}::text
    )`;
}

/**
 * One graphile_worker.job_spec built in SQL (for add_jobs over many rows): the payload and the
 * job key as SQL values, from the task's own `payloadFromRow` and `key.sql`.
 */
export function jobSpec(task: TaskName, spec: { payload: SQL; key: SQL; maxAttempts: number }): SQL {
  return sql`row(${task}::text, ${spec.payload}, null, null, ${spec.maxAttempts}::smallint, ${spec.key}, null, null)::graphile_worker.job_spec`;
}

export async function enqueueJob<T extends TaskName>(
  tx: Executor,
  task: T,
  payload: JobPayload<T>,
  options: EnqueueOptions = {},
): Promise<void> {
  await tx.execute(sql`select ${addJob(task, payload, options)}`);
}
