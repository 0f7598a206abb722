// Direct-to-bucket uploads (STORAGE=s3), Uppy-Companion-compatible: @uppy/aws-s3 works with
// `companionEndpoint: '<server>/api'`, and with `signRequest` calling POST /api/s3/sign in JWT mode.
// Thin: each route validates its input and hands it to src/direct/direct-uploads.ts.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { DeclaredFile, DirectUploads } from '../../direct/direct-uploads.js';
import type { Logger } from '../../logger.js';
import { ErrorBody, errorResponses } from '../schemas.js';

export interface S3DirectRoutesOptions {
  direct: DirectUploads;
}

const MAX_METADATA_ENTRIES = 32;
const MAX_METADATA_VALUE = 2000;
/** S3 numbers parts 1–10000. */
const PartNumber = z.coerce.number().int().min(1).max(10_000);
const MultipartId = z.string().min(1).max(1024);
const KeyQuery = z.object({ key: z.string().min(1).max(1024) });
const Size = z.coerce.number().int().nonnegative();

/**
 * Uppy sends every meta field of a file; the record keeps the plain values (as tus metadata, so
 * webhooks and the files API see the same names), a bounded number of them.
 */
export function plainMetadata(metadata: Record<string, unknown> | undefined): Record<string, string> {
  const plain: Record<string, string> = {};
  for (const [name, value] of Object.entries(metadata ?? {}).slice(0, MAX_METADATA_ENTRIES)) {
    if (name.length > 100) continue;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      plain[name] = String(value).slice(0, MAX_METADATA_VALUE);
    }
  }
  return plain;
}

/** `metadata[name]=value` query parameters (Uppy's GET /s3/params), as an object. */
export function metadataOfQuery(query: Record<string, unknown>): Record<string, unknown> {
  const metadata: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(query)) {
    const match = /^metadata\[(.+)\]$/.exec(name);
    if (match) metadata[match[1]!] = Array.isArray(value) ? value[0] : value;
  }
  return metadata;
}

const CreateBody = z.object({
  filename: z.string().max(1000).optional(),
  type: z.string().max(300).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  size: Size.optional(),
});

const SignBody = z.object({
  method: z.enum(['GET', 'PUT', 'POST', 'DELETE']),
  key: z.string().min(1).max(1024),
  uploadId: MultipartId.optional(),
  partNumber: PartNumber.optional(),
  contentType: z.string().max(300).optional(),
  filename: z.string().max(1000).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  size: Size.optional(),
});

const Completed = z.object({ location: z.string(), key: z.string(), fileId: z.string() });
const errors = { ...errorResponses, 409: ErrorBody, 410: ErrorBody, 413: ErrorBody, 415: ErrorBody };

function declared(body: { filename?: string | undefined; type?: string | undefined; metadata?: Record<string, unknown> | undefined; size?: number | undefined }): DeclaredFile {
  return { filename: body.filename ?? null, type: body.type ?? null, metadata: plainMetadata(body.metadata), size: body.size ?? null };
}

export const s3DirectRoutes: FastifyPluginAsync<S3DirectRoutesOptions> = async (plugin, { direct }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>();
  // Every log line of these requests (Fastify's included) says which upload protocol they are.
  app.addHook('onRequest', async (request) => {
    // Fastify's logger type leaves out pino's setBindings, which the request's child logger has.
    (request.log as Partial<Pick<Logger, 'setBindings'>>).setBindings?.({ protocol: 's3-direct' });
  });
  const tags = ['direct-to-bucket'];

  app.post(
    '/s3/multipart',
    {
      schema: {
        tags,
        summary: 'Start a multipart upload straight to the bucket (the server chooses the key)',
        body: CreateBody,
        response: { 200: z.object({ key: z.string(), uploadId: z.string() }), ...errors },
      },
    },
    async (request) => direct.createMultipart(request.principal, declared(request.body)),
  );

  app.get(
    '/s3/multipart/:uploadId/batch',
    {
      schema: {
        tags,
        summary: 'Presigned URLs of several parts (partNumbers=1,2,3)',
        params: z.object({ uploadId: MultipartId }),
        querystring: KeyQuery.extend({ partNumbers: z.string().regex(/^\d{1,5}(,\d{1,5}){0,99}$/) }),
        response: { 200: z.object({ presignedUrls: z.record(z.string(), z.string()) }), ...errors },
      },
    },
    async (request) => {
      const numbers = [...new Set(request.query.partNumbers.split(',').map((n) => PartNumber.parse(n)))];
      return { presignedUrls: await direct.signParts(request.principal, request.query.key, request.params.uploadId, numbers) };
    },
  );

  app.get(
    '/s3/multipart/:uploadId/:partNumber',
    {
      schema: {
        tags,
        summary: 'A presigned URL to PUT one part',
        params: z.object({ uploadId: MultipartId, partNumber: PartNumber }),
        querystring: KeyQuery,
        response: { 200: z.object({ url: z.string() }), ...errors },
      },
    },
    async (request) => {
      const { partNumber, uploadId } = request.params;
      const urls = await direct.signParts(request.principal, request.query.key, uploadId, [partNumber]);
      return { url: urls[partNumber]! };
    },
  );

  app.get(
    '/s3/multipart/:uploadId',
    {
      schema: {
        tags,
        summary: 'The parts the bucket holds (to resume after a reload)',
        params: z.object({ uploadId: MultipartId }),
        querystring: KeyQuery,
        response: { 200: z.array(z.object({ PartNumber: z.number(), ETag: z.string(), Size: z.number() })), ...errors },
      },
    },
    async (request) => direct.listParts(request.principal, request.query.key, request.params.uploadId),
  );

  app.post(
    '/s3/multipart/:uploadId/complete',
    {
      schema: {
        tags,
        summary: 'Complete the multipart upload: checked, then processed like a tus upload',
        params: z.object({ uploadId: MultipartId }),
        querystring: KeyQuery,
        body: z.object({ parts: z.array(z.object({ PartNumber: PartNumber, ETag: z.string().min(1).max(200) })).min(1).max(10_000) }),
        response: { 200: Completed, ...errors },
      },
    },
    async (request) => direct.complete(request.principal, request.query.key, request.params.uploadId, request.body.parts),
  );

  app.delete(
    '/s3/multipart/:uploadId',
    {
      schema: {
        tags,
        summary: 'Abort the multipart upload (its reservation is released)',
        params: z.object({ uploadId: MultipartId }),
        querystring: KeyQuery,
        response: { 200: z.object({}), ...errors },
      },
    },
    async (request) => {
      await direct.abort(request.principal, request.query.key, request.params.uploadId);
      return {};
    },
  );

  app.get(
    '/s3/params',
    {
      schema: {
        tags,
        summary: 'A presigned POST for a small file in one request (then POST /api/s3/confirm)',
        querystring: z.looseObject({ filename: z.string().max(1000).optional(), type: z.string().max(300).optional(), size: Size.optional() }),
        response: { 200: z.object({ method: z.literal('POST'), url: z.string(), fields: z.record(z.string(), z.string()) }), ...errors },
      },
    },
    async (request) => direct.presignPost(request.principal, declared({ ...request.query, metadata: metadataOfQuery(request.query) })),
  );

  app.post(
    '/s3/confirm',
    {
      schema: {
        tags,
        summary: 'The object of a presigned POST (or of a signRequest upload) has landed: checked, then processed',
        body: KeyQuery,
        response: { 200: Completed, ...errors },
      },
    },
    async (request) => direct.confirm(request.principal, request.body.key),
  );

  app.post(
    '/s3/sign',
    {
      schema: {
        tags,
        summary: "Presign one S3 request of @uppy/aws-s3's signRequest (bearer token) for your own upload",
        body: SignBody,
        response: {
          200: z.object({
            url: z.string(),
            key: z.string().optional(),
            fields: z.record(z.string(), z.string()).optional(),
            headers: z.record(z.string(), z.string()).optional(),
          }),
          ...errors,
        },
      },
    },
    async (request) => {
      const { method, key, uploadId, partNumber, contentType } = request.body;
      return direct.sign(request.principal, { method, key, uploadId, partNumber, contentType }, declared({ ...request.body, filename: request.body.filename ?? key }));
    },
  );
};
