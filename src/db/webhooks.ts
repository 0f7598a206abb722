// Webhook endpoints, events and deliveries. Events and their deliveries are written only by the
// outbox trigger (drizzle/0004_webhook_outbox.sql) in the transaction of the change; this module
// reads them for the delivery task and the admin API, and records what each attempt got.
import { and, asc, desc, eq, sql } from 'drizzle-orm';
import type { Config, WebhookEventType } from '../config/index.js';
import type { Executor } from './tx.js';
import {
  webhookDeliveries,
  webhookEndpoints,
  webhookEvents,
  type WebhookDeliveryRow,
  type WebhookEndpointRow,
  type WebhookEventRow,
} from './schema.js';

/** Makes the WEBHOOK_URL endpoint the table's `fromConfig` row (disabled when WEBHOOK_URL is unset). */
export async function syncConfiguredEndpoint(db: Executor, webhook: Config['webhook']): Promise<void> {
  const [secret, previousSecret = null] = webhook.secrets;
  if (!webhook.url || !secret) {
    await db.update(webhookEndpoints).set({ enabled: false }).where(eq(webhookEndpoints.fromConfig, true));
    return;
  }
  const values = {
    url: webhook.url,
    secret,
    previousSecret,
    previousSecretUntil: null,
    events: webhook.events,
    enabled: true,
    maxAttempts: webhook.maxAttempts,
  };
  await db
    .insert(webhookEndpoints)
    .values({ ...values, fromConfig: true })
    .onConflictDoUpdate({ target: webhookEndpoints.fromConfig, targetWhere: sql`${webhookEndpoints.fromConfig}`, set: values });
}

export async function createEndpoint(
  db: Executor,
  values: { url: string; secret: string; events: string[] | null; maxAttempts: number },
): Promise<WebhookEndpointRow> {
  const [row] = await db.insert(webhookEndpoints).values(values).returning();
  return row!;
}

export async function listEndpoints(db: Executor): Promise<WebhookEndpointRow[]> {
  return db.select().from(webhookEndpoints).orderBy(asc(webhookEndpoints.createdAt), asc(webhookEndpoints.id));
}

export async function findEndpoint(db: Executor, id: string): Promise<WebhookEndpointRow | undefined> {
  const [row] = await db.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, id));
  return row;
}

/** The secrets that sign an endpoint's requests: its secret, and the one it replaced while that is kept. */
export function signingSecrets(endpoint: Pick<WebhookEndpointRow, 'secret' | 'previousSecret' | 'previousSecretUntil'>, at = new Date()): string[] {
  const keep = endpoint.previousSecret && (endpoint.previousSecretUntil === null || endpoint.previousSecretUntil > at);
  return keep ? [endpoint.secret, endpoint.previousSecret!] : [endpoint.secret];
}

/**
 * Gives an endpoint (not the WEBHOOK_URL one, whose secrets come from WEBHOOK_SECRET) a new
 * secret; the current one keeps signing for `keepPreviousMs`. Undefined when there is no such endpoint.
 */
export async function rotateSecret(db: Executor, id: string, secret: string, keepPreviousMs: number): Promise<WebhookEndpointRow | undefined> {
  const [row] = await db
    .update(webhookEndpoints)
    .set({
      previousSecret: sql`${webhookEndpoints.secret}`,
      previousSecretUntil: sql`now() + make_interval(secs => ${keepPreviousMs / 1000})`,
      secret,
    })
    .where(and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.fromConfig, false)))
    .returning();
  return row;
}

/** Stops signing with the secret a rotation replaced, now. */
export async function retirePreviousSecret(db: Executor, id: string): Promise<WebhookEndpointRow | undefined> {
  const [row] = await db
    .update(webhookEndpoints)
    .set({ previousSecret: null, previousSecretUntil: null })
    .where(and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.fromConfig, false)))
    .returning();
  return row;
}

/** Deletes the endpoint with its deliveries; its pending jobs find nothing left to do. */
export async function deleteEndpoint(db: Executor, id: string): Promise<boolean> {
  const rows = await db.delete(webhookEndpoints).where(eq(webhookEndpoints.id, id)).returning({ id: webhookEndpoints.id });
  return rows.length > 0;
}

export interface DeliveryView {
  delivery: WebhookDeliveryRow;
  event: Pick<WebhookEventRow, 'id' | 'type' | 'uploadId' | 'occurredAt'>;
}

export async function listDeliveries(db: Executor, endpointId: string, limit: number): Promise<DeliveryView[]> {
  return db
    .select({
      delivery: webhookDeliveries,
      event: { id: webhookEvents.id, type: webhookEvents.type, uploadId: webhookEvents.uploadId, occurredAt: webhookEvents.occurredAt },
    })
    .from(webhookDeliveries)
    .innerJoin(webhookEvents, eq(webhookEvents.id, webhookDeliveries.eventId))
    .where(eq(webhookDeliveries.endpointId, endpointId))
    .orderBy(desc(webhookEvents.seq))
    .limit(limit);
}

/** An (endpoint, upload)'s deliveries still to send, oldest event first. */
export async function pendingDeliveries(
  db: Executor,
  endpointId: string,
  uploadId: string,
): Promise<Array<{ delivery: WebhookDeliveryRow; event: WebhookEventRow }>> {
  return db
    .select({ delivery: webhookDeliveries, event: webhookEvents })
    .from(webhookDeliveries)
    .innerJoin(webhookEvents, eq(webhookEvents.id, webhookDeliveries.eventId))
    .where(and(eq(webhookDeliveries.endpointId, endpointId), eq(webhookDeliveries.uploadId, uploadId), eq(webhookDeliveries.status, 'pending')))
    .orderBy(asc(webhookEvents.seq));
}

export interface AttemptOutcome {
  ok: boolean;
  status: number | null;
  body: string | null;
  error: string | null;
  /** No attempt follows: a failure makes the delivery `failed`. */
  last: boolean;
}

export async function recordAttempt(db: Executor, deliveryId: string, outcome: AttemptOutcome): Promise<void> {
  await db
    .update(webhookDeliveries)
    .set({
      attempts: sql`${webhookDeliveries.attempts} + 1`,
      lastAttemptAt: sql`now()`,
      responseStatus: outcome.status,
      responseBody: outcome.body,
      lastError: outcome.error,
      ...(outcome.ok ? { status: 'delivered' as const, deliveredAt: sql`now()` } : outcome.last ? { status: 'failed' as const } : {}),
    })
    .where(eq(webhookDeliveries.id, deliveryId));
}

/** The delivery job of an (endpoint, upload), through the same SQL function the trigger uses. */
export async function enqueueDeliveries(db: Executor, endpointId: string, uploadId: string, maxAttempts: number): Promise<void> {
  await db.execute(sql`select webhook_enqueue(${endpointId}::uuid, ${uploadId}::text, ${maxAttempts}::int)`);
}

/**
 * The outbox rows of an event that is no status change (`file.restored`): one event per ready file
 * of the blob, with a delivery and a job per endpoint that wants it, as the trigger writes them.
 * Call it in the transaction of the change.
 */
export async function recordBlobEvent(tx: Executor, type: WebhookEventType, sha256: string): Promise<void> {
  await tx.execute(sql`
    with wanted as (
      select e.id, e.max_attempts from webhook_endpoints e where e.enabled and (e.events is null or ${type} = any (e.events))
    ), event as (
      insert into webhook_events (type, upload_id, owner_id, snapshot)
      select ${type}, u.id, u.owner_id, jsonb_build_object('upload', to_jsonb(u), 'blob', to_jsonb(b))
      from uploads u join blobs b on b.sha256 = u.blob_sha256
      where u.blob_sha256 = ${sha256} and u.status = 'ready' and coalesce(u.upload_concat, '') <> 'partial'
        and exists (select 1 from wanted)
      order by u.id
      returning id, upload_id
    ), delivery as (
      insert into webhook_deliveries (event_id, endpoint_id, upload_id)
      select event.id, wanted.id, event.upload_id from event cross join wanted
    )
    select webhook_enqueue(wanted.id, event.upload_id, wanted.max_attempts) from event cross join wanted`);
}

/** Sends a delivery again (from the start of its attempts); null when there is no such delivery. */
export async function retryDelivery(db: Executor, deliveryId: string): Promise<WebhookDeliveryRow | null> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .update(webhookDeliveries)
      .set({ status: 'pending' })
      .where(eq(webhookDeliveries.id, deliveryId))
      .returning();
    if (!row || row.uploadId === null) return row ?? null;
    const endpoint = await findEndpoint(tx, row.endpointId);
    if (endpoint) await enqueueDeliveries(tx, row.endpointId, row.uploadId, endpoint.maxAttempts);
    return row;
  });
}

/** Deliveries still to send, and how long the oldest has waited (for the backlog gauges). */
export async function webhookBacklog(db: Executor): Promise<{ pending: number; oldestSeconds: number }> {
  const [row] = await db.execute<{ pending: unknown; oldest: unknown }>(sql`
    select count(*) as pending, coalesce(extract(epoch from now() - min(created_at)), 0) as oldest
    from webhook_deliveries where status = 'pending'`);
  return { pending: Number(row?.pending ?? 0), oldestSeconds: Number(row?.oldest ?? 0) };
}

/**
 * Webhook events that happened before `before` and were delivered to every endpoint they were
 * for (their deliveries go with them: on delete cascade), oldest first, at most `limit`: deleted,
 * or only counted when `dryRun`. Events with a pending or failed delivery stay (retry, inspection).
 */
export async function purgeDeliveredEvents(db: Executor, before: Date, options: { dryRun: boolean; limit: number }): Promise<number> {
  const old = sql`
    select e.id from webhook_events e
    where e.occurred_at < ${before.toISOString()}::timestamptz
      and not exists (select 1 from webhook_deliveries d where d.event_id = e.id and d.status <> 'delivered')
    order by e.occurred_at
    limit ${options.limit}`;
  const rows = options.dryRun
    ? await db.execute<{ id: string }>(old)
    : await db.execute<{ id: string }>(sql`delete from webhook_events where id in (${old}) returning id`);
  return rows.length;
}
