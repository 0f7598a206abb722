// Webhook endpoints, events and deliveries. Events and their deliveries are written only by the
// outbox trigger (drizzle/0004_webhook_outbox.sql) in the transaction of the change; this module
// reads them for the delivery task and the admin API, and records what each attempt got.
import { and, asc, desc, eq, sql } from 'drizzle-orm';
import type { Config } from '../config/index.js';
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
  if (!webhook.url || !webhook.secret) {
    await db.update(webhookEndpoints).set({ enabled: false }).where(eq(webhookEndpoints.fromConfig, true));
    return;
  }
  const values = { url: webhook.url, secret: webhook.secret, events: webhook.events, enabled: true, maxAttempts: webhook.maxAttempts };
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
