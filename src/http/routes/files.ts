// The files API: an owner's own files only. Another owner's file is answered exactly like a
// missing one (404, same body), so ids cannot be probed.
import { Readable } from 'node:stream';
import contentDisposition from 'content-disposition';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import parseRange from 'range-parser';
import { z } from 'zod';
import { AUDIT } from '../../db/audit.js';
import type { Db } from '../../db/client.js';
import { findOwnedFile, listOwnedFiles, removeFile, type FileRow, type ListCursor } from '../../db/files.js';
import { findUpload } from '../../db/uploads.js';
import { findBlob } from '../../db/processing.js';
import type { BlobRow } from '../../db/schema.js';
import { isAccessStale, stampAccess } from '../../db/tiers.js';
import { AppError, badRequest, notFound, unavailable } from '../../errors.js';
import { isReadable, startRestore, type RestoreState, type TierPolicy } from '../../lifecycle/tiers.js';
import type { Logger } from '../../logger.js';
import { removeUnreferenced } from '../../storage/remove-unreferenced.js';
import { ObjectArchivedError, type ObjectStorage } from '../../storage/types.js';
import { toFileRecord } from '../file-record.js';
import {
  DownloadLink,
  ErrorBody,
  FileIdParams,
  FileList,
  FileRecord,
  ListFilesQuery,
  RestoreAnswer,
  UploadId,
  errorResponses,
} from '../schemas.js';
import { MAX_LINK_TTL_SECONDS, type LinkSigner } from '../signed-links.js';

export interface FilesRoutesOptions {
  db: Db;
  storage: ObjectStorage;
  signer: LinkSigner;
  logger: Logger;
  tiers: TierPolicy;
}

const encodeCursor = (cursor: ListCursor) =>
  Buffer.from(JSON.stringify([cursor.createdAt.toISOString(), cursor.id])).toString('base64url');

function decodeCursor(text: string): ListCursor {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as [string, string];
    const date = new Date(createdAt);
    if (Number.isNaN(date.getTime()) || !UploadId.safeParse(id).success) throw new Error('bad cursor');
    return { createdAt: date, id };
  } catch {
    throw badRequest('INVALID_CURSOR', 'the cursor is not one this server returned');
  }
}

export function ownId(id: string): string {
  if (!UploadId.safeParse(id).success) throw notFound('file');
  return id;
}

export const filesRoutes: FastifyPluginAsync<FilesRoutesOptions> = async (plugin, { db, storage, signer, logger, tiers }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>();

  /** Starts (or joins) the restore of an archived blob. */
  const restore = (blob: BlobRow, actor: string): Promise<RestoreState> => {
    // S3, or disk with an archive bucket: an archived blob on storage without classes means the
    // storage settings changed since (STORAGE, or ARCHIVE_S3_* removed).
    if (!storage.classes) throw unavailable('ARCHIVE_UNAVAILABLE', 'the file is archived in a bucket this server is not configured for');
    return startRestore({ db, classes: storage.classes }, blob, tiers, actor);
  };
  const archivedError = (state: Extract<RestoreState, { status: 'restoring' }>) =>
    new AppError(
      409,
      'FILE_ARCHIVED',
      'the file is archived; a restore has started and it can be downloaded once it completes',
      { restore: 'started', retryAfter: state.retryAfterSeconds },
      { 'Retry-After': String(state.retryAfterSeconds) },
    );

  // Bodies are optional on these routes (download-url): `Content-Type: application/json` with an
  // empty body is no body, not an error. Anything else goes to Fastify's own JSON parser.
  const json = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if ((body as string).trim() === '') return done(null, undefined);
    return json(request, body as string, done);
  });

  app.get(
    '/files',
    {
      schema: {
        tags: ['files'],
        summary: 'List your files, newest first',
        querystring: ListFilesQuery,
        response: { 200: FileList, ...errorResponses },
      },
    },
    async (request) => {
      const { status, kind, limit, cursor } = request.query;
      const page = await listOwnedFiles(db, {
        ownerId: request.principal.ownerId,
        status,
        kind,
        limit,
        after: cursor ? decodeCursor(cursor) : undefined,
      });
      return { files: page.rows.map(toFileRecord), nextCursor: page.next ? encodeCursor(page.next) : null };
    },
  );

  app.get(
    '/files/:id',
    {
      schema: { tags: ['files'], summary: 'One of your files', params: FileIdParams, response: { 200: FileRecord, ...errorResponses } },
    },
    async (request) => {
      const row = await findOwnedFile(db, ownId(request.params.id), request.principal.ownerId);
      if (!row) throw notFound('file');
      return toFileRecord(row);
    },
  );

  app.delete(
    '/files/:id',
    {
      schema: {
        tags: ['files'],
        summary: 'Delete one of your files (its bytes go when no other file shares them)',
        params: FileIdParams,
        response: { 204: z.null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      const id = ownId(request.params.id);
      const { ownerId } = request.principal;
      const removed = await removeFile(db, id, { ownerId, actor: ownerId, action: AUDIT.deleted, status: 'deleted' });
      if (!removed) throw notFound('file');
      await removeUnreferenced(storage, removed.objectsToRemove, logger);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/files/:id/download-url',
    {
      schema: {
        tags: ['files'],
        summary: 'A signed, short-lived download link for a ready file (for <a href> and media elements)',
        params: FileIdParams,
        // Optional: Fastify validates a missing body as null.
        body: z.object({ expiresIn: z.number().int().min(10).max(MAX_LINK_TTL_SECONDS).default(300) }).nullish(),
        response: { 200: DownloadLink, 409: ErrorBody, ...errorResponses },
      },
    },
    async (request) => {
      const row = await findOwnedFile(db, ownId(request.params.id), request.principal.ownerId);
      if (!row) throw notFound('file');
      assertReady(row);
      const expiresAt = Math.floor(Date.now() / 1000) + (request.body?.expiresIn ?? 300);
      const query = new URLSearchParams({ expires: String(expiresAt), sig: signer.sign(row.upload.id, expiresAt) });
      return { url: `/api/files/${row.upload.id}/content?${query}`, expiresAt: new Date(expiresAt * 1000).toISOString() };
    },
  );

  app.post(
    '/files/:id/restore',
    {
      schema: {
        tags: ['files'],
        summary: 'Restore an archived file so it can be downloaded (202 while the restore runs)',
        params: FileIdParams,
        response: { 200: RestoreAnswer, 202: RestoreAnswer, 409: ErrorBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const row = await findOwnedFile(db, ownId(request.params.id), request.principal.ownerId);
      if (!row) throw notFound('file');
      const blob = assertReady(row);
      const state = isReadable(blob, new Date()) ? ({ status: 'available' } as const) : await restore(blob, request.principal.ownerId);
      if (state.status === 'available') return { status: 'available' as const, retryAfter: null };
      reply.header('Retry-After', String(state.retryAfterSeconds));
      return reply.status(202).send({ status: 'restoring', retryAfter: state.retryAfterSeconds });
    },
  );

  app.get(
    '/files/:id/content',
    {
      config: { signedLink: true },
      schema: {
        tags: ['files'],
        summary: 'Download a ready file (Range, ETag, If-None-Match); a signed link works without a token',
        params: FileIdParams,
        querystring: z.object({ expires: z.string().max(20).optional(), sig: z.string().max(100).optional() }),
        response: {
          200: z.any().describe('The file'),
          206: z.any().describe('The requested byte range'),
          304: z.null().describe('Not modified (If-None-Match)'),
          403: ErrorBody,
          409: ErrorBody,
          416: ErrorBody,
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const id = ownId(request.params.id);
      let row: FileRow | undefined;
      if (request.query.sig !== undefined) {
        if (!signer.verify(id, request.query.expires, request.query.sig)) {
          throw new AppError(403, 'INVALID_LINK', 'this download link is invalid or has expired; ask for a new one');
        }
        const upload = await findUpload(db, id);
        if (upload && upload.status !== 'deleted') {
          row = { upload, blob: upload.blobSha256 ? ((await findBlob(db, upload.blobSha256)) ?? null) : null };
        }
      } else {
        row = await findOwnedFile(db, id, request.principal.ownerId);
      }
      if (!row) throw notFound('file');
      const blob = assertReady(row);
      const now = new Date();
      const actor = request.principal?.ownerId ?? 'signed-link';
      if (!isReadable(blob, now)) {
        const state = await restore(blob, actor);
        if (state.status === 'restoring') throw archivedError(state);
      }

      const etag = `"${blob.sha256}"`;
      reply.headers({
        ETag: etag,
        'Accept-Ranges': 'bytes',
        'Content-Type': blob.mimeType ?? 'application/octet-stream',
        'Content-Disposition': contentDisposition(row.upload.filename, {
          type: 'attachment',
          fallback: asciiFallback(row.upload.filename),
        }),
        'X-Content-Type-Options': 'nosniff',
        // Never let a stored file run as a page of this origin, whatever it contains.
        'Content-Security-Policy': "default-src 'none'; sandbox",
        'Cache-Control': 'private, no-cache',
        'Referrer-Policy': 'no-referrer',
        ...(row.upload.readyAt ? { 'Last-Modified': row.upload.readyAt.toUTCString() } : {}),
      });
      if (etagMatches(request.headers['if-none-match'], etag)) return reply.status(304).send(null);

      const size = blob.size;
      let range: { start: number; end: number } | undefined;
      const rangeHeader = request.headers.range;
      const ifRange = request.headers['if-range'];
      if (rangeHeader && (ifRange === undefined || ifRange === etag)) {
        const parsed = parseRange(size, wholeForLongSuffixes(rangeHeader, size), { combine: true });
        if (parsed === -1) {
          reply.header('Content-Range', `bytes */${size}`);
          throw new AppError(416, 'RANGE_NOT_SATISFIABLE', `the file has ${size} bytes; the requested range is outside it`, {
            size,
          });
        }
        // A malformed header or several ranges: serve the whole file, as RFC 9110 allows.
        if (parsed !== -2 && parsed.type === 'bytes' && parsed.length === 1) range = parsed[0];
      }
      if (range) {
        reply.status(206).header('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
        reply.header('Content-Length', String(range.end - range.start + 1));
      } else {
        reply.header('Content-Length', String(size));
      }
      // HEAD: Fastify's HEAD route keeps our Content-Length only for a stream payload.
      if (request.method === 'HEAD') return reply.send(Readable.from([]));
      if (isAccessStale(row.upload.lastAccessedAt, now)) {
        await stampAccess(db, row.upload.id, now).catch((error: unknown) => logger.warn({ err: error, id }, 'could not stamp the download'));
      }
      if (size === 0) return reply.send('');
      try {
        return reply.send(await storage.read(blob.storageKey, range ?? { start: 0, end: size - 1 }));
      } catch (error) {
        // Archived after this request read the record (a sweep right now), or its restored copy expired.
        if (!(error instanceof ObjectArchivedError)) throw error;
        const state = await restore(blob, actor);
        throw state.status === 'restoring' ? archivedError(state) : error;
      }
    },
  );
};

/**
 * RFC 9110 §14.1.2: a suffix range longer than the representation (`bytes=-200000` of 100 KB)
 * selects all of it. range-parser counts it unsatisfiable, so such a suffix becomes `0-` first.
 * `bytes=-0` stays unsatisfiable; an empty file has no byte to select either way.
 */
function wholeForLongSuffixes(header: string, size: number): string {
  const equals = header.indexOf('=');
  if (equals < 0 || size === 0) return header;
  const specs = header
    .slice(equals + 1)
    .split(',')
    .map((spec) => {
      const suffix = /^\s*-\s*(\d+)\s*$/.exec(spec);
      return suffix && Number(suffix[1]) > size ? '0-' : spec;
    });
  return `${header.slice(0, equals + 1)}${specs.join(',')}`;
}

export function assertReady(row: FileRow) {
  if (row.upload.status !== 'ready' || !row.blob) {
    throw new AppError(409, 'FILE_NOT_READY', `the file is ${row.upload.status}; only ready files can be downloaded`, {
      status: row.upload.status,
    });
  }
  return row.blob;
}

/** "naïve café.bin" → "naive cafe.bin"; what cannot be transliterated becomes "_". */
function asciiFallback(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^\x20-\x7e]/gu, '_');
}

export function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header === '*' || header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}
