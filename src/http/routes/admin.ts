// Administration (role "admin"): maintenance now. Analytics live in admin-analytics.ts.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Config } from '../../config/index.js';
import type { Db } from '../../db/client.js';
import { STORAGE_TIERS } from '../../db/schema.js';
import { runCleanup } from '../../lifecycle/cleanup.js';
import type { Logger } from '../../logger.js';
import type { ObjectStorage } from '../../storage/types.js';
import { requireAdmin } from '../auth-hooks.js';
import { ErrorBody, errorResponses } from '../schemas.js';

export interface AdminRoutesOptions {
  db: Db;
  storage: ObjectStorage;
  config: Config;
  logger: Logger;
}

const Category = z.object({ count: z.number().int(), bytes: z.number().int(), ids: z.array(z.string()) });
const CleanupReport = z
  .object({
    dryRun: z.boolean(),
    startedAt: z.string(),
    expired: Category.describe('Unfinished uploads past their expiry'),
    rejected: Category.describe('Rejected files past REJECTED_RETENTION'),
    quarantined: Category.describe('Infected files past QUARANTINE_RETENTION'),
    blobs: Category.describe('Content blobs without references'),
    orphans: Category.describe('Stored objects no record knows'),
    webhookEvents: Category.describe('Webhook events past WEBHOOK_RETENTION delivered to every endpoint (counted; ids not listed)'),
    tierMoves: Category.extend({
      moves: z.array(
        z.object({ sha256: z.string(), bytes: z.number().int(), from: z.enum(STORAGE_TIERS), to: z.enum(STORAGE_TIERS) }),
      ),
    }).describe('Blobs moved to a colder storage tier (TIER_INFREQUENT_AFTER, TIER_ARCHIVE_AFTER); ids are their sha256'),
  })
  .meta({ id: 'CleanupReport' });

export const adminRoutes: FastifyPluginAsync<AdminRoutesOptions> = async (plugin, { db, storage, config }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>();
  app.addHook('preHandler', requireAdmin);

  app.post(
    '/admin/uploads/cleanup',
    {
      schema: {
        tags: ['admin'],
        summary: 'Run the lifecycle sweep now; dryRun reports exactly what a run would do without doing it',
        body: z.object({ dryRun: z.boolean().default(true) }).strict(),
        response: { 200: CleanupReport, 403: ErrorBody, ...errorResponses },
      },
    },
    async (request) => runCleanup({ db, storage, logger: request.log as Logger }, config, { dryRun: request.body.dryRun }),
  );
};
