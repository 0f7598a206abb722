// Prometheus metrics of this process. `registry` is what GET /metrics serves; a worker process
// counts what its tasks do, an API process what its requests do.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

/**
 * Virus scans by outcome, one per scan actually sent to the scanner (re-uploads of scanned bytes
 * reuse the verdict and are not counted):
 *   clean / infected     a verdict;
 *   unscannable          the scanner cannot take these bytes (e.g. over clamd's StreamMaxLength);
 *   retry                the attempt failed (scanner down or erroring, storage error); the job retries;
 *   gave_up              the last attempt failed too, the files are `failed`.
 */
export const scanResults = new Counter({
  name: 'tusvault_scan_results_total',
  help: 'Virus scans by result (clean, infected, unscannable, retry, gave_up)',
  labelNames: ['result'] as const,
  registers: [registry],
});
export type ScanResult = 'clean' | 'infected' | 'unscannable' | 'retry' | 'gave_up';
// Every result from zero, so an alert on increase() sees a process's first infected file too.
for (const result of ['clean', 'infected', 'unscannable', 'retry', 'gave_up'] satisfies ScanResult[]) scanResults.inc({ result }, 0);

// tus endpoint metrics, named like tusd's so dashboards carry over.
export const tusRequests = new Counter({
  name: 'tus_requests_total',
  help: 'Requests to the tus endpoint by method',
  labelNames: ['method'] as const,
  registers: [registry],
});
export const tusErrors = new Counter({
  name: 'tus_errors_total',
  help: 'tus requests answered with an error, by method and status code',
  labelNames: ['method', 'status'] as const,
  registers: [registry],
});
export const tusBytesReceived = new Counter({
  name: 'tus_bytes_received_total',
  help: 'Bytes received and stored through the tus endpoint',
  registers: [registry],
});
export const tusUploadsCreated = new Counter({ name: 'tus_uploads_created_total', help: 'Uploads created', registers: [registry] });
export const tusUploadsFinished = new Counter({
  name: 'tus_uploads_finished_total',
  help: 'Uploads whose last byte arrived',
  registers: [registry],
});
export const tusUploadsTerminated = new Counter({
  name: 'tus_uploads_terminated_total',
  help: 'Unfinished uploads terminated by their client',
  registers: [registry],
});
export const openConnections = new Gauge({
  name: 'tus_connections_open',
  help: 'Open HTTP connections to this server process',
  registers: [registry],
});

// Processing.
export const processingStepSeconds = new Histogram({
  name: 'tusvault_processing_step_seconds',
  help: 'Duration of processing steps (digest, metadata, scan; inline: a small file settled where it finished) in seconds',
  labelNames: ['step'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
  registers: [registry],
});
/**
 * How process_upload got an upload's SHA-256 and MD5: `arrival` from the bytes as they were
 * received (no re-read), `storage` from its own pass over the stored bytes (the fallback).
 */
export const uploadDigests = new Counter({
  name: 'tusvault_upload_digests_total',
  help: 'Upload digests by source (arrival: hashed while receiving; storage: read back and hashed)',
  labelNames: ['source'] as const,
  registers: [registry],
});
export const finishToFinalSeconds = new Histogram({
  name: 'tusvault_finish_to_final_seconds',
  help: 'From the last byte of an upload to its final status, in seconds, by final status',
  labelNames: ['status'] as const,
  buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
  registers: [registry],
});

// The scheduled lifecycle sweep (tasks/lifecycle.ts) by outcome; both series exist from the start
// so an alert on increase() sees the first error.
export const lifecycleRuns = new Counter({
  name: 'tusvault_lifecycle_runs_total',
  help: 'Scheduled lifecycle sweeps by outcome (ok, error)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});
for (const outcome of ['ok', 'error']) lifecycleRuns.inc({ outcome }, 0);

// Webhooks: attempts by event type and outcome (delivered, retry, failed), and how long each took.
export const webhookAttempts = new Counter({
  name: 'tusvault_webhook_attempts_total',
  help: 'Webhook delivery attempts by event type and outcome (delivered, retry, failed)',
  labelNames: ['event', 'outcome'] as const,
  registers: [registry],
});
export const webhookAttemptSeconds = new Histogram({
  name: 'tusvault_webhook_attempt_seconds',
  help: 'Duration of webhook delivery attempts in seconds',
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});
// How late the application learns of a change: retries and their backoff included.
export const webhookDeliveryLatency = new Histogram({
  name: 'tusvault_webhook_delivery_latency_seconds',
  help: 'From the change that caused a webhook event to its delivery, in seconds (retries included)',
  labelNames: ['event'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400],
  registers: [registry],
});
// The pre-create hook's answers (src/webhooks/pre-create.ts), every outcome from zero.
export const preCreateHookAnswers = new Counter({
  name: 'tusvault_pre_create_hook_answers_total',
  help: 'Pre-create hook answers by outcome (accepted, refused, unavailable: 503, failed_open: accepted unasked)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});
export type PreCreateOutcome = 'accepted' | 'refused' | 'unavailable' | 'failed_open';
for (const outcome of ['accepted', 'refused', 'unavailable', 'failed_open'] satisfies PreCreateOutcome[]) preCreateHookAnswers.inc({ outcome }, 0);

/** Times an async step into processingStepSeconds. */
export async function timed<T>(step: string, work: () => Promise<T>): Promise<T> {
  const end = processingStepSeconds.startTimer({ step });
  try {
    return await work();
  } finally {
    end();
  }
}

export interface DatabaseGaugeSource {
  queue(): Promise<Array<{ state: string; count: number }>>;
  uploads(): Promise<Array<{ status: string; count: number }>>;
  dedup(): Promise<{ bytesSaved: number; sharedBlobs: number }>;
  webhookBacklog(): Promise<{ pending: number; oldestSeconds: number }>;
}

// Set by the composition root; the gauges below read through it at scrape time.
let source: DatabaseGaugeSource | null = null;

/**
 * Gauges read from PostgreSQL at scrape time, so every process reports the same cluster-wide
 * numbers: the job queue by state, uploads by status, de-duplication savings.
 */
export function useDatabaseGauges(next: DatabaseGaugeSource): void {
  source = next;
}

new Gauge({
  name: 'tusvault_queue_jobs',
  help: 'Jobs in the processing queue by state (pending, running, retrying, failed)',
  labelNames: ['state'] as const,
  registers: [registry],
  async collect() {
    this.reset();
    for (const row of (await source?.queue()) ?? []) this.set({ state: row.state }, row.count);
  },
});
new Gauge({
  name: 'tusvault_uploads',
  help: 'Uploads by status',
  labelNames: ['status'] as const,
  registers: [registry],
  async collect() {
    this.reset();
    for (const row of (await source?.uploads()) ?? []) this.set({ status: row.status }, row.count);
  },
});
new Gauge({
  name: 'tusvault_dedup_bytes_saved',
  help: 'Bytes not stored thanks to content de-duplication',
  registers: [registry],
  async collect() {
    this.set((await source?.dedup())?.bytesSaved ?? 0);
  },
});
new Gauge({
  name: 'tusvault_dedup_shared_blobs',
  help: 'Stored contents shared by several files',
  registers: [registry],
  async collect() {
    this.set((await source?.dedup())?.sharedBlobs ?? 0);
  },
});
new Gauge({
  name: 'tusvault_webhook_backlog',
  help: 'Webhook deliveries not yet delivered (pending), cluster-wide',
  registers: [registry],
  async collect() {
    this.set((await source?.webhookBacklog())?.pending ?? 0);
  },
});
new Gauge({
  name: 'tusvault_webhook_backlog_oldest_seconds',
  help: 'Age of the oldest pending webhook delivery in seconds (0 when none)',
  registers: [registry],
  async collect() {
    this.set((await source?.webhookBacklog())?.oldestSeconds ?? 0);
  },
});
