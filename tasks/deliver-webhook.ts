// deliver_webhook: sends one upload's pending webhook deliveries to one endpoint, oldest event
// first (the outbox trigger wrote them with the status changes; drizzle/0004_webhook_outbox.sql).
// Each request is POST {type, timestamp, data} with data = the file record as GET /api/files/:id
// shows it at the time of the event (built from the event's snapshot), signed per Standard
// Webhooks with the event id as `webhook-id` (the same on every retry: receivers dedupe on it).
// 2xx = delivered. Anything else (an error status, a timeout, a refused connection, a redirect)
// is recorded and thrown: graphile-worker retries the job with exponential backoff, and the
// later events of the file wait behind it (order is kept). After the job's last attempt the
// delivery is `failed` and the file's later events get a job of their own.
import type { Task } from 'graphile-worker';
import { fileRowFromSnapshot, toFileRecord } from '../src/db/file-record.js';
import { parsePayload } from '../src/db/jobs.js';
import { enqueueDeliveries, findEndpoint, pendingDeliveries, recordAttempt, signingSecrets } from '../src/db/webhooks.js';
import type { WebhookEventRow } from '../src/db/schema.js';
import { webhookAttemptSeconds, webhookAttempts, webhookDeliveryLatency } from '../src/metrics.js';
import { sendWebhook } from '../src/webhooks/send.js';
import { isLastAttempt, type TaskDeps } from './deps.js';

/** The request body of an event: the same bytes on every attempt. */
export function webhookBody(event: WebhookEventRow): string {
  return JSON.stringify({
    type: event.type,
    timestamp: event.occurredAt.toISOString(),
    data: toFileRecord(fileRowFromSnapshot(event.snapshot)),
  });
}

export function deliverWebhook(deps: TaskDeps): Task<'deliver_webhook'> {
  return async (raw, helpers) => {
    const { endpointId, uploadId } = parsePayload('deliver_webhook', raw);
    const endpoint = await findEndpoint(deps.db, endpointId);
    if (!endpoint || !endpoint.enabled) return;
    const last = isLastAttempt(helpers.job);
    const pending = await pendingDeliveries(deps.db, endpointId, uploadId);
    for (const [index, { delivery, event }] of pending.entries()) {
      const result = await sendWebhook(
        { url: endpoint.url, id: event.id, body: webhookBody(event), secrets: signingSecrets(endpoint) },
        { timeoutMs: deps.config.webhook.timeoutMs, allowPrivate: deps.config.webhook.allowPrivate },
      );
      webhookAttemptSeconds.observe(result.durationMs / 1000);
      await recordAttempt(deps.db, delivery.id, { ...result, last });
      webhookAttempts.inc({ event: event.type, outcome: result.ok ? 'delivered' : last ? 'failed' : 'retry' });
      if (result.ok) {
        webhookDeliveryLatency.observe({ event: event.type }, (Date.now() - event.occurredAt.getTime()) / 1000);
        continue;
      }
      helpers.logger.warn(`webhook ${event.type} ${event.id} to ${endpoint.url}: ${result.error}`);
      // The later events of this file get their own attempts once this one is given up.
      if (last && index < pending.length - 1) await enqueueDeliveries(deps.db, endpointId, uploadId, endpoint.maxAttempts);
      throw new Error(`webhook delivery ${delivery.id} failed: ${result.error}`);
    }
  };
}
