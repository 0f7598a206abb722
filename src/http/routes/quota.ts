// Quotas: an owner reads their own; an admin sets any owner's limits.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Config } from '../../config/index.js';
import type { Db } from '../../db/client.js';
import { getQuota, updateQuota } from '../../db/quota.js';
import { errorResponses, ErrorBody, OwnerIdParams, Quota, QuotaUpdate } from '../schemas.js';
import { requireAdmin } from '../auth-hooks.js';

export interface QuotaRoutesOptions {
  db: Db;
  config: Config;
}

export const quotaRoutes: FastifyPluginAsync<QuotaRoutesOptions> = async (plugin, { db, config }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/me/quota',
    { schema: { tags: ['quota'], summary: 'Your limits, usage and reservations', response: { 200: Quota, ...errorResponses } } },
    async (request) => getQuota(db, request.principal.ownerId, config.quota),
  );

  app.put(
    '/admin/quotas/:ownerId',
    {
      preHandler: requireAdmin,
      schema: {
        tags: ['admin'],
        summary: "Set an owner's limits (any subset; null = back to the default)",
        params: OwnerIdParams,
        body: QuotaUpdate,
        response: { 200: Quota, 403: ErrorBody, ...errorResponses },
      },
    },
    async (request) => updateQuota(db, request.params.ownerId, request.body, config.quota, request.principal.ownerId),
  );
};
