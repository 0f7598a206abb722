// Creation of a final upload (tus concatenation, `Upload-Concat: final;<url> <url> ...`), which
// @tus/server does not implement. The partials must be the caller's own partial uploads with a
// known length; they may still be receiving bytes (concatenation-unfinished): the final is
// assembled by the `concat_upload` job once the last of them completes.
import { randomBytes } from 'node:crypto';
import { createFinalUpload, findUploads, isPartial } from '../src/db/concat.js';
import { badRequest } from '../src/errors.js';
import { parseMetadata } from '../src/tus/protocol.js';
import type { FinalRequest } from '../src/tus/lifecycle.js';
import type { HookDeps } from './deps.js';
import { uploadIdOfUrl } from '../src/tus/target.js';
import { declaredFile, declaredKind } from './policy.js';
import { admitUpload, metadataForHook } from '../src/webhooks/pre-create.js';

export async function createFinal(deps: HookDeps, request: FinalRequest): Promise<{ id: string; expiresAt: Date }> {
  // A partial may be listed several times and in several finals (the specification allows reuse):
  // every use counts against the quota, and one final lists at most CONCAT_MAX_PARTS of them.
  if (request.urls.length > deps.config.concatMaxParts) {
    throw badRequest('TOO_MANY_PARTIAL_UPLOADS', `a final upload may list at most ${deps.config.concatMaxParts} partial uploads`, {
      limit: deps.config.concatMaxParts,
      listed: request.urls.length,
    });
  }
  const ids = request.urls.map((url) => {
    const id = uploadIdOfUrl(url, deps.config.tusPath);
    if (!id) throw badRequest('INVALID_UPLOAD_CONCAT', `"${url.slice(0, 100)}" is not an upload URL of this server`);
    return id;
  });
  const rows = new Map((await findUploads(deps.db, [...new Set(ids)])).map((row) => [row.id, row]));
  let size = 0;
  for (const [index, id] of ids.entries()) {
    const part = rows.get(id);
    // Missing, another owner's, not partial or gone: one answer for all, so nothing leaks.
    if (!part || part.ownerId !== request.principal.ownerId || !isPartial(part) || part.status !== 'uploading') {
      throw badRequest('INVALID_UPLOAD_CONCAT', `${request.urls[index]} is not one of your partial uploads`);
    }
    if (part.size === null) {
      throw badRequest('INVALID_UPLOAD_CONCAT', `${request.urls[index]} has no length yet; declare it before concatenating`);
    }
    size += part.size;
  }

  const metadata = request.metadata ? parseMetadata(request.metadata) : {};
  const { filename, mimeType } = declaredFile(metadata, request.metadata);
  const kind = declaredKind(deps, { filename, mimeType, size });
  // The application is asked about the file the final makes (its partials were not asked).
  const appMetadata = await admitUpload(deps.preCreate, {
    owner: request.principal.ownerId,
    filename,
    size,
    mimeType,
    kind,
    metadata: metadataForHook(metadata),
    protocol: 'tus',
  });
  const id = randomBytes(16).toString('hex');
  const expiresAt = new Date(Date.now() + deps.config.uploadExpiryMs);
  await createFinalUpload(
    deps.db,
    {
      id,
      ownerId: request.principal.ownerId,
      filename,
      mimeType,
      kind,
      size,
      tusMetadata: metadata,
      appMetadata,
      uploadConcat: request.concat,
      parts: ids,
      expiresAt,
    },
    deps.config.quota,
    deps.config.jobMaxAttempts,
  );
  return { id, expiresAt };
}
