// Admin analytics (role "admin"): uploads, the processing queue, failures, top uploaders,
// de-duplication savings, series over time, storage breakdowns and the quarantine, all computed in
// PostgreSQL.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { quarantineList, readyLatencySeries, storageByKind, storageByOwner, uploadSeries } from '../../db/analytics-series.js';
import { duplicateGroups, failureAnalytics, queueAnalytics, topUploaders, uploadAnalytics, type Window } from '../../db/analytics.js';
import { STORAGE_TIERS } from '../../db/schema.js';
import { tierAnalytics, type TierPolicy } from '../../lifecycle/tiers.js';
import type { ObjectStorage } from '../../storage/types.js';
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

// The series' resolution: enough for a chart, bounded so one request stays one cheap query.
const MAX_BUCKETS = 200;

const Counts = z.object({ pending: z.number(), running: z.number(), retrying: z.number(), failed: z.number() });
const responses = { 403: ErrorBody, ...errorResponses };

// The tier analytics use the policy (prices, the next sweep's moves) and the storage's classes.
export const adminAnalyticsRoutes: FastifyPluginAsync<{ db: Db; tiers: TierPolicy; storage: ObjectStorage }> = async (
  plugin,
  { db, tiers, storage },
) => {
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
    '/admin/analytics/series',
    {
      schema: {
        tags: ['admin'],
        summary: 'A window cut into equal buckets: uploads, success rate, bytes stored, bytes saved by de-duplication (by creation), finish → ready latency p50/p95 (by readiness)',
        querystring: WindowQuery.extend({ buckets: z.coerce.number().int().min(1).max(MAX_BUCKETS).default(24).describe('How many equal slices of the window') }),
        response: {
          200: z.object({
            start: z.string(),
            end: z.string(),
            bucketSeconds: z.number(),
            buckets: z.array(
              z.object({
                start: z.string(),
                total: z.number(),
                succeeded: z.number(),
                failed: z.number(),
                successRate: z.number().nullable().describe('ready / (ready + rejected, infected, failed); null when none reached a verdict'),
                bytesStored: z.number(),
                dedupBytes: z.number().describe('Bytes of ready files whose content was already stored (not stored twice)'),
                readyFiles: z.number(),
                readyP50Ms: z.number().nullable(),
                readyP95Ms: z.number().nullable(),
              }),
            ),
          }),
          ...responses,
        },
      },
    },
    async (request) => {
      const window = windowOf(request.query);
      const buckets = { ...window, count: request.query.buckets };
      const [uploads, latency] = await Promise.all([uploadSeries(db, buckets), readyLatencySeries(db, buckets)]);
      const width = (window.end.getTime() - window.start.getTime()) / buckets.count;
      return {
        start: window.start.toISOString(),
        end: window.end.toISOString(),
        bucketSeconds: width / 1000,
        buckets: uploads.map((bucket, i) => ({ start: new Date(window.start.getTime() + i * width).toISOString(), ...bucket, ...latency[i]! })),
      };
    },
  );

  app.get(
    '/admin/analytics/storage',
    {
      schema: {
        tags: ['admin'],
        summary: 'What is stored now (ready files): by kind (with the bytes shared content takes once) and by owner (the quota usage, most bytes first)',
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(10).describe('How many owners') }),
        response: {
          200: z.object({
            byKind: z.array(z.object({ kind: z.string(), files: z.number(), bytes: z.number(), storedBytes: z.number() })),
            byOwner: z.array(z.object({ ownerId: z.string(), files: z.number(), bytes: z.number() })),
          }),
          ...responses,
        },
      },
    },
    async (request) => {
      const [byKind, byOwner] = await Promise.all([storageByKind(db), storageByOwner(db, request.query.limit)]);
      return { byKind, byOwner };
    },
  );

  app.get(
    '/admin/analytics/quarantine',
    {
      schema: {
        tags: ['admin'],
        summary: 'Infected files (the quarantine) with the signature clamd found, newest first',
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(20) }),
        response: {
          200: z.object({
            files: z.array(
              z.object({ id: z.string(), ownerId: z.string(), filename: z.string(), size: z.number(), signature: z.string().nullable(), at: z.string().nullable() }),
            ),
          }),
          ...responses,
        },
      },
    },
    async (request) => ({ files: await quarantineList(db, request.query.limit) }),
  );

  app.get(
    '/admin/analytics/tiers',
    {
      schema: {
        tags: ['admin'],
        summary:
          'What is stored in each storage tier (objects, shared content once; bytes; files) and its estimated monthly cost ' +
          '(TIER_PRICE_*, USD per GiB-month), the moves the next sweep would make, and what de-duplication saves',
        response: {
          200: z.object({
            tiers: z.array(
              z.object({
                tier: z.enum(STORAGE_TIERS),
                objects: z.number(),
                bytes: z.number(),
                files: z.number(),
                pricePerGibMonth: z.number(),
                monthlyCost: z.number(),
              }),
            ),
            monthlyCost: z.number(),
            candidates: z.object({
              count: z.number(),
              bytes: z.number(),
              moves: z.array(z.object({ sha256: z.string(), bytes: z.number(), from: z.enum(STORAGE_TIERS), to: z.enum(STORAGE_TIERS) })),
            }),
            deduplication: z.object({ savedBytes: z.number(), savedMonthlyCost: z.number() }),
          }),
          ...responses,
        },
      },
    },
    async () => tierAnalytics(db, tiers, storage.classes, new Date()),
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
