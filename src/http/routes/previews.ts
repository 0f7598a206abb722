// A ready file's previews (light map, brightness series, waveform peaks, ...): owner-checked like downloads
// (another owner's file is a 404), only for ready files (409 otherwise), made once per content.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { findOwnedFile } from '../../db/files.js';
import { latestPreviews } from '../../db/previews.js';
import type { PreviewRow } from '../../db/schema.js';
import { notFound } from '../../errors.js';
import type { ObjectStorage } from '../../storage/types.js';
import { ErrorBody, FileIdParams, errorResponses } from '../schemas.js';
import { assertReady, etagMatches, ownId } from './files.js';

export interface PreviewsRoutesOptions {
  db: Db;
  storage: ObjectStorage;
}

const EXTENSIONS: Record<string, string> = { 'image/png': 'png', 'application/json': 'json', 'image/webp': 'webp' };

/** The name a preview is fetched by: its kind and the extension of its type, e.g. lightmap.png. */
const nameOf = (row: Pick<PreviewRow, 'kind' | 'contentType'>) => `${row.kind}.${EXTENSIONS[row.contentType ?? ''] ?? 'bin'}`;

const PreviewList = z
  .object({
    previews: z.array(
      z.object({
        name: z.string().describe('What GET /api/files/{id}/previews/{name} takes, e.g. lightmap.png'),
        kind: z
          .string()
          .describe(
            'FSEQ: lightmap (PNG, time × channels), brightness (JSON, per frame); audio: peaks (JSON, audiowaveform min/max pairs), waveform (PNG); image: thumbnail-256, thumbnail-1024 (WebP, long side)',
          ),
        size: z.number().int(),
        contentType: z.string(),
      }),
    ),
    missing: z
      .array(z.object({ kind: z.string(), reason: z.string() }))
      .describe('Previews that could not be made for this content, and why; the file itself is unaffected'),
  })
  .meta({ id: 'PreviewList' });

export const previewsRoutes: FastifyPluginAsync<PreviewsRoutesOptions> = async (plugin, { db, storage }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>();

  /** The ready file's blob, or the same 404 / 409 a download answers. */
  const readyBlob = async (id: string, ownerId: string) => {
    const row = await findOwnedFile(db, ownId(id), ownerId);
    if (!row) throw notFound('file');
    return assertReady(row);
  };

  app.get(
    '/files/:id/previews',
    {
      schema: {
        tags: ['files'],
        summary: 'The previews of one of your ready files (and why any is missing)',
        params: FileIdParams,
        response: { 200: PreviewList, 409: ErrorBody, ...errorResponses },
      },
    },
    async (request) => {
      const blob = await readyBlob(request.params.id, request.principal.ownerId);
      const rows = await latestPreviews(db, blob.sha256);
      return {
        previews: rows
          .filter((row) => row.status === 'ready')
          .map((row) => ({ name: nameOf(row), kind: row.kind, size: row.size ?? 0, contentType: row.contentType ?? 'application/octet-stream' })),
        missing: rows.filter((row) => row.status === 'failed').map((row) => ({ kind: row.kind, reason: row.error ?? 'unknown' })),
      };
    },
  );

  app.get(
    '/files/:id/previews/:name',
    {
      schema: {
        tags: ['files'],
        summary: 'One preview of one of your ready files (ETag, If-None-Match)',
        params: FileIdParams.extend({ name: z.string().max(100) }),
        response: { 200: z.any().describe('The preview'), 304: z.null().describe('Not modified'), 409: ErrorBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const blob = await readyBlob(request.params.id, request.principal.ownerId);
      const row = (await latestPreviews(db, blob.sha256)).find((p) => p.status === 'ready' && nameOf(p) === request.params.name);
      if (!row?.storageKey) throw notFound('preview');
      // A preview's bytes never change for its key (content × kind × options): the key is the tag.
      const etag = `"${row.sha256}-${row.kind}-${row.optionsHash}"`;
      reply.headers({
        ETag: etag,
        'Content-Type': row.contentType ?? 'application/octet-stream',
        'X-Content-Type-Options': 'nosniff',
        'Content-Security-Policy': "default-src 'none'; sandbox",
        // Private (owner-checked); revalidated so a deleted file stops being served from caches.
        'Cache-Control': 'private, no-cache',
      });
      if (etagMatches(request.headers['if-none-match'], etag)) return reply.status(304).send(null);
      reply.header('Content-Length', String(row.size ?? 0));
      return reply.send(await storage.read(row.storageKey, undefined, row.size));
    },
  );
};
