// Admin analytics (role "admin"): uploads, the processing queue, failures, top uploaders and
// de-duplication savings, all computed in PostgreSQL.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { duplicateGroups, failureAnalytics, queueAnalytics, topUploaders, uploadAnalytics, type Window } from '../../db/analytics.js';
import { STORAGE_TIERS } from '../../db/schema.js';
import { tierTotals } from '../../db/tiers.js';
import { badRequest } from '../../errors.js';
import { requireAdmin } from '../auth-hooks.js';
import { ErrorBody, errorResponses } from '../schemas.js';

const DAY = 86_400_000;

// A window is checked before it reaches the database: both ends within 1970-01-01 and
// 9999-12-31 (UTC; PostgreSQL has no year 0 and JavaScript writes years beyond 9999 in a form
// PostgreSQL does not read), start not after end (equal: an empty window), and at most
// MAX_WINDOW_DAYS long, so one request cannot make the reports aggregate years of uploads.
// Every refusal is 400 INVALID_RANGE naming the parameter (malformed dates: VALIDATION_ERROR).
export const MAX_WINDOW_DAYS = 366;
const EARLIEST = Date.UTC(1970, 0, 1);
const LATEST = Date.UTC(10000, 0, 1) - 1;

const WindowQuery = z.object({
  start: z.iso
    .datetime({ offset: true })
    .or(z.iso.date())
    .optional()
    .describe(`Inclusive start (ISO 8601, 1970 to 9999); default 30 days before end. At most ${MAX_WINDOW_DAYS} days before end`),
  end: z.iso.datetime({ offset: true }).or(z.iso.date()).optional().describe('Exclusive end (ISO 8601, 1970 to 9999); default now'),
});

const invalidRange = (parameter: 'start' | 'end', message: string, details: Record<string, unknown> = {}) =>
  badRequest('INVALID_RANGE', message, { parameter, ...details });

function instant(value: string | undefined, parameter: 'start' | 'end'): Date | undefined {
  if (value === undefined) return undefined;
  const time = new Date(value).getTime();
  if (Number.isNaN(time)) throw invalidRange(parameter, `${parameter} is not a date`);
  if (time < EARLIEST || time > LATEST) throw invalidRange(parameter, `${parameter} must be between 1970-01-01 and 9999-12-31 (UTC)`);
  return new Date(time);
}

function windowOf(query: z.infer<typeof WindowQuery>): Window {
  const end = instant(query.end, 'end') ?? new Date();
  const start = instant(query.start, 'start') ?? new Date(Math.max(EARLIEST, end.getTime() - 30 * DAY));
  if (start > end) throw invalidRange('start', 'start must not be after end');
  if (end.getTime() - start.getTime() > MAX_WINDOW_DAYS * DAY) {
    throw invalidRange(query.end === undefined ? 'start' : 'end', `the window from start to end may be at most ${MAX_WINDOW_DAYS} days long; ask for several windows`, {
      maxDays: MAX_WINDOW_DAYS,
    });
  }
  return { start, end };
}

const Counts = z.object({ pending: z.number(), running: z.number(), retrying: z.number(), failed: z.number() });
const responses = { 403: ErrorBody, ...errorResponses };

export const adminAnalyticsRoutes: FastifyPluginAsync<{ db: Db }> = async (plugin, { db }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>();
  app.addHook('preHandler', requireAdmin);

  app.get(
    '/admin/analytics/uploads',
    {
      schema: {
        tags: ['admin'],
        summary: 'Uploads created in a window: totals, success rate, sizes, by MIME type, kind and status, scan verdicts',
        querystring: WindowQuery,
        response: {
          200: z.object({
            start: z.string(),
            end: z.string(),
            total: z.number(),
            succeeded: z.number(),
            failed: z.number(),
            inProgress: z.number(),
            successRate: z.number().nullable(),
            averageSize: z.number().nullable(),
            bytesStored: z.number(),
            byStatus: z.record(z.string(), z.number()),
            byMimeType: z.array(z.object({ mimeType: z.string(), count: z.number(), bytes: z.number() })),
            byKind: z.array(z.object({ kind: z.string(), count: z.number(), bytes: z.number() })),
            scans: z.object({ clean: z.number(), infected: z.number(), failed: z.number(), skipped: z.number(), pending: z.number() }),
          }),
          ...responses,
        },
      },
    },
    async (request) => uploadAnalytics(db, windowOf(request.query)),
  );

  app.get(
    '/admin/analytics/tiers',
    {
      schema: {
        tags: ['admin'],
        summary: 'What is stored in each storage tier: objects (shared content once), their bytes, the files using them',
        response: {
          200: z.object({
            tiers: z.array(z.object({ tier: z.enum(STORAGE_TIERS), objects: z.number(), bytes: z.number(), files: z.number() })),
          }),
          ...responses,
        },
      },
    },
    async () => ({ tiers: await tierTotals(db) }),
  );

  app.get(
    '/admin/analytics/queue',
    {
      schema: {
        tags: ['admin'],
        summary: 'The processing queue: pending, running, retrying and failed jobs, by step',
        response: {
          200: Counts.extend({
            uploadsProcessing: z.number(),
            byStep: z.record(z.string(), Counts),
            failedJobs: z.array(
              z.object({ id: z.string(), task: z.string(), attempts: z.number(), key: z.string().nullable(), lastError: z.string().nullable(), at: z.string() }),
            ),
          }),
          ...responses,
        },
      },
    },
    async () => queueAnalytics(db),
  );

  app.get(
    '/admin/analytics/failures',
    {
      schema: {
        tags: ['admin'],
        summary: 'Rejected, infected and failed files in a window, by reason',
        querystring: WindowQuery,
        response: {
          200: z.object({
            start: z.string(),
            end: z.string(),
            total: z.number(),
            byStatus: z.record(z.string(), z.number()),
            reasons: z.array(z.object({ status: z.string(), reason: z.string(), count: z.number(), lastAt: z.string() })),
          }),
          ...responses,
        },
      },
    },
    async (request) => failureAnalytics(db, windowOf(request.query)),
  );

  app.get(
    '/admin/analytics/top-uploaders',
    {
      schema: {
        tags: ['admin'],
        summary: 'Owners by bytes of ready files uploaded in a window',
        querystring: WindowQuery.extend({ limit: z.coerce.number().int().min(1).max(1000).default(10) }),
        response: {
          200: z.object({
            start: z.string(),
            end: z.string(),
            owners: z.array(z.object({ ownerId: z.string(), uploads: z.number(), readyFiles: z.number(), bytes: z.number() })),
          }),
          ...responses,
        },
      },
    },
    async (request) => topUploaders(db, windowOf(request.query), request.query.limit),
  );

  app.get(
    '/admin/duplicates',
    {
      schema: {
        tags: ['admin'],
        summary: 'Content shared by several files and the bytes de-duplication saves',
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(50) }),
        response: {
          200: z.object({
            groups: z.number(),
            duplicateReferences: z.number(),
            bytesSaved: z.number(),
            top: z.array(
              z.object({
                sha256: z.string(),
                size: z.number(),
                references: z.number(),
                bytesSaved: z.number(),
                kind: z.string(),
                filenames: z.array(z.string()),
              }),
            ),
          }),
          ...responses,
        },
      },
    },
    async (request) => duplicateGroups(db, request.query.limit),
  );
};
