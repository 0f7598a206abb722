// Webhook endpoints (role "admin"): add, list, remove, rotate a secret, see deliveries, retry one,
// send a test.
// Events and deliveries are written by the outbox trigger (drizzle/0004_webhook_outbox.sql).
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { isWebhookSecret, WEBHOOK_EVENT_TYPES, type Config } from '../../config/index.js';
import type { Db } from '../../db/client.js';
import { WEBHOOK_DELIVERY_STATUSES, type WebhookEndpointRow } from '../../db/schema.js';
import { parseDuration } from '../../config/units.js';
import {
  createEndpoint,
  deleteEndpoint,
  findEndpoint,
  listDeliveries,
  listEndpoints,
  retirePreviousSecret,
  retryDelivery,
  rotateSecret,
  signingSecrets,
} from '../../db/webhooks.js';
import { badRequest, conflict, notFound } from '../../errors.js';
import { generateSecret, refuseUrl, sendWebhook } from '../../webhooks/send.js';
import { requireAdmin } from '../auth-hooks.js';
import { ErrorBody, errorResponses } from '../schemas.js';

export interface AdminWebhookRoutesOptions {
  db: Db;
  config: Config;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

const Endpoint = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(z.enum(WEBHOOK_EVENT_TYPES)).nullable().describe('null: every event'),
    enabled: z.boolean(),
    fromConfig: z.boolean().describe('The endpoint of WEBHOOK_URL (re-created from the configuration at start)'),
    maxAttempts: z.number().int(),
    previousSecretActive: z.boolean().describe('A rotation is under way: the replaced secret signs too (a second v1 signature)'),
    previousSecretUntil: z.string().nullable().describe('When the replaced secret stops signing (null: when retired)'),
    createdAt: z.string(),
  })
  .meta({ id: 'WebhookEndpoint' });

const CreatedEndpoint = Endpoint.extend({
  secret: z.string().describe('The signing secret (whsec_…); shown only in this answer'),
}).meta({ id: 'CreatedWebhookEndpoint' });

const Delivery = z
  .object({
    id: z.string(),
    eventId: z.string().describe('The webhook-id header of every attempt'),
    type: z.string(),
    uploadId: z.string().nullable(),
    occurredAt: z.string(),
    status: z.enum(WEBHOOK_DELIVERY_STATUSES),
    attempts: z.number().int(),
    lastAttemptAt: z.string().nullable(),
    responseStatus: z.number().int().nullable(),
    responseBody: z.string().nullable().describe('The first KiB of the last answer'),
    lastError: z.string().nullable(),
    deliveredAt: z.string().nullable(),
  })
  .meta({ id: 'WebhookDelivery' });

const IdParams = z.object({ id: z.uuid() });

const Secret = z.string().refine(isWebhookSecret, 'expected whsec_ followed by the base64 of at least 16 bytes');

/** At most this long may a replaced secret keep signing. */
const MAX_KEEP_PREVIOUS_MS = 30 * 86_400_000;

const KeepPrevious = z
  .string()
  .default('24h')
  .transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === null || ms > MAX_KEEP_PREVIOUS_MS) {
      ctx.addIssue({ code: 'custom', message: 'expected a duration such as 1h or 7d, at most 30d' });
      return z.NEVER;
    }
    return ms;
  });

function view(row: WebhookEndpointRow): z.output<typeof Endpoint> {
  return {
    id: row.id,
    url: row.url,
    events: row.events as z.output<typeof Endpoint>['events'],
    enabled: row.enabled,
    fromConfig: row.fromConfig,
    maxAttempts: row.maxAttempts,
    previousSecretActive: signingSecrets(row).length > 1,
    previousSecretUntil: row.previousSecret ? iso(row.previousSecretUntil) : null,
    createdAt: row.createdAt.toISOString(),
  };
}

export const adminWebhookRoutes: FastifyPluginAsync<AdminWebhookRoutesOptions> = async (plugin, { db, config }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>();
  app.addHook('preHandler', requireAdmin);
  const tags = ['admin', 'webhooks'];

  app.post(
    '/admin/webhooks',
    {
      schema: {
        tags,
        summary: 'Add a webhook endpoint; the secret is generated (and shown once) when not given',
        body: z
          .object({
            url: z.string().max(2000),
            events: z.array(z.enum(WEBHOOK_EVENT_TYPES)).min(1).optional().describe('Default: every event'),
            secret: Secret.optional(),
          })
          .strict(),
        response: { 201: CreatedEndpoint, 403: ErrorBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const refused = await refuseUrl(request.body.url, config.webhook.allowPrivate);
      if (refused) throw badRequest('WEBHOOK_URL_REFUSED', refused);
      const secret = request.body.secret ?? generateSecret();
      const row = await createEndpoint(db, {
        url: request.body.url,
        secret,
        events: request.body.events ? [...new Set(request.body.events)] : null,
        maxAttempts: config.webhook.maxAttempts,
      });
      return reply.status(201).send({ ...view(row), secret });
    },
  );

  app.get(
    '/admin/webhooks',
    { schema: { tags, summary: 'The webhook endpoints', response: { 200: z.object({ webhooks: z.array(Endpoint) }), 403: ErrorBody, ...errorResponses } } },
    async () => ({ webhooks: (await listEndpoints(db)).map(view) }),
  );

  app.delete(
    '/admin/webhooks/:id',
    {
      schema: {
        tags,
        summary: 'Remove a webhook endpoint and its delivery history',
        params: IdParams,
        response: { 204: z.null(), 403: ErrorBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      if (!(await deleteEndpoint(db, request.params.id))) throw notFound('webhook endpoint');
      return reply.status(204).send(null);
    },
  );

  /** The endpoint whose secret the admin API may change (WEBHOOK_URL's comes from WEBHOOK_SECRET). */
  async function rotatable(id: string): Promise<void> {
    const endpoint = await findEndpoint(db, id);
    if (!endpoint) throw notFound('webhook endpoint');
    if (endpoint.fromConfig) {
      throw conflict('WEBHOOK_FROM_CONFIG', "the WEBHOOK_URL endpoint's secrets come from WEBHOOK_SECRET: list the new and the old secret there during a rotation");
    }
  }

  app.post(
    '/admin/webhooks/:id/rotate-secret',
    {
      schema: {
        tags,
        summary: 'Give an endpoint a new secret (shown once); the current one keeps signing for `keepPreviousFor` (default 24h)',
        params: IdParams,
        body: z.object({ secret: Secret.optional(), keepPreviousFor: KeepPrevious }).strict(),
        response: { 200: CreatedEndpoint, 403: ErrorBody, ...errorResponses },
      },
    },
    async (request) => {
      await rotatable(request.params.id);
      const secret = request.body.secret ?? generateSecret();
      const row = await rotateSecret(db, request.params.id, secret, request.body.keepPreviousFor);
      if (!row) throw notFound('webhook endpoint');
      return { ...view(row), secret };
    },
  );

  app.delete(
    '/admin/webhooks/:id/previous-secret',
    {
      schema: {
        tags,
        summary: 'Stop signing with the secret the last rotation replaced, now',
        params: IdParams,
        response: { 204: z.null(), 403: ErrorBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      await rotatable(request.params.id);
      if (!(await retirePreviousSecret(db, request.params.id))) throw notFound('webhook endpoint');
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/admin/webhooks/:id/deliveries',
    {
      schema: {
        tags,
        summary: "An endpoint's deliveries, newest event first",
        params: IdParams,
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) }),
        response: { 200: z.object({ deliveries: z.array(Delivery) }), 403: ErrorBody, ...errorResponses },
      },
    },
    async (request) => {
      if (!(await findEndpoint(db, request.params.id))) throw notFound('webhook endpoint');
      const rows = await listDeliveries(db, request.params.id, request.query.limit);
      return {
        deliveries: rows.map(({ delivery, event }) => ({
          id: delivery.id,
          eventId: event.id,
          type: event.type,
          uploadId: event.uploadId,
          occurredAt: event.occurredAt.toISOString(),
          status: delivery.status,
          attempts: delivery.attempts,
          lastAttemptAt: iso(delivery.lastAttemptAt),
          responseStatus: delivery.responseStatus,
          responseBody: delivery.responseBody,
          lastError: delivery.lastError,
          deliveredAt: iso(delivery.deliveredAt),
        })),
      };
    },
  );

  app.post(
    '/admin/webhooks/deliveries/:id/retry',
    {
      schema: {
        tags,
        summary: 'Send a delivery again (after the file’s earlier pending events to that endpoint)',
        params: IdParams,
        response: { 202: z.object({ id: z.string(), status: z.enum(WEBHOOK_DELIVERY_STATUSES) }), 403: ErrorBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const row = await retryDelivery(db, request.params.id);
      if (!row) throw notFound('webhook delivery');
      return reply.status(202).send({ id: row.id, status: row.status });
    },
  );

  app.post(
    '/admin/webhooks/:id/test',
    {
      schema: {
        tags,
        summary: 'Send a signed `webhook.test` event to the endpoint now and report its answer',
        params: IdParams,
        response: {
          200: z.object({
            ok: z.boolean(),
            status: z.number().int().nullable(),
            body: z.string().nullable(),
            error: z.string().nullable(),
            durationMs: z.number(),
          }),
          403: ErrorBody,
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const endpoint = await findEndpoint(db, request.params.id);
      if (!endpoint) throw notFound('webhook endpoint');
      const id = randomUUID();
      const body = JSON.stringify({ type: 'webhook.test', timestamp: new Date().toISOString(), data: { endpointId: endpoint.id } });
      return sendWebhook(
        { url: endpoint.url, id, body, secrets: signingSecrets(endpoint) },
        { timeoutMs: config.webhook.timeoutMs, allowPrivate: config.webhook.allowPrivate },
      );
    },
  );
};
