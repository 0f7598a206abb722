// An operator's lookup of any file (role "admin"), by its id or by the sha256 of its bytes: every
// owner's records, deleted ones too, as GET /api/files/:id shows them.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { findFilesForAdmin } from '../../db/files.js';
import { badRequest } from '../../errors.js';
import { requireAdmin } from '../auth-hooks.js';
import { toFileRecord } from '../file-record.js';
import { ErrorBody, errorResponses, FileRecord, UploadId } from '../schemas.js';

const LOOKUP_LIMIT = 50;

const Lookup = z
  .object({
    id: UploadId.optional(),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'a sha256 is 64 hexadecimal characters')
      .transform((value) => value.toLowerCase())
      .optional(),
  })
  .strict();

export const adminFileRoutes: FastifyPluginAsync<{ db: Db }> = async (plugin, { db }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>();
  app.addHook('preHandler', requireAdmin);

  app.get(
    '/admin/files',
    {
      schema: {
        tags: ['admin'],
        summary: `Any owner's files with this id, or with these bytes (sha256); newest first, at most ${LOOKUP_LIMIT}`,
        querystring: Lookup,
        response: { 200: z.object({ files: z.array(FileRecord) }), 403: ErrorBody, ...errorResponses },
      },
    },
    async (request) => {
      const { id, sha256 } = request.query;
      if ((id === undefined) === (sha256 === undefined)) {
        throw badRequest('INVALID_LOOKUP', 'give exactly one of id and sha256');
      }
      const rows = await findFilesForAdmin(db, id !== undefined ? { id } : { sha256: sha256! }, LOOKUP_LIMIT);
      return { files: rows.map(toFileRecord) };
    },
  );
};
