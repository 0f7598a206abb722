// onIncomingRequest: runs before @tus/server sees a HEAD, PATCH or DELETE on an upload. It makes
// ownership and the record's status authoritative for the tus endpoint:
// - another owner's upload is answered exactly like a missing one (404, same body);
// - a finished upload is answered from its record (HEAD) and refused for more bytes (PATCH 409);
//   terminating it (DELETE) deletes the file exactly as DELETE /api/files/:id does;
// - a final upload (concatenation) is answered from its record and its partials' stored offsets;
// - a deferred length declared by a PATCH is checked against the policy and quota first;
// - termination updates the record before the bytes go (see markUploadTerminated).
import { ERRORS, Metadata } from '@tus/utils';
import { AppError, notFound } from '../src/errors.js';
import { AUDIT } from '../src/db/audit.js';
import { findUploads, isFinal } from '../src/db/concat.js';
import { removeFile } from '../src/db/files.js';
import { findUpload, markUploadTerminated } from '../src/db/uploads.js';
import { adjustReservation, reservableBytes, reserveDeclaredLength } from '../src/db/quota.js';
import type { UploadRow } from '../src/db/schema.js';
import type { IncomingDecision, IncomingRequest } from '../src/tus/lifecycle.js';
import { UPLOAD_ID_PATTERN } from '../src/tus/target.js';
import { declaredKind } from './policy.js';
import type { HookDeps } from './deps.js';


export async function onIncomingRequest(deps: HookDeps, request: IncomingRequest): Promise<IncomingDecision> {
  if (!UPLOAD_ID_PATTERN.test(request.uploadId)) throw notFound();
  const upload = await findUpload(deps.db, request.uploadId);
  if (!upload || upload.ownerId !== request.principal.ownerId || upload.status === 'deleted') throw notFound();
  // Past its expiry an unfinished upload is gone for the client, even before the sweep removes it.
  const lapsed = upload.status === 'uploading' && upload.expiresAt !== null && upload.expiresAt.getTime() < Date.now();
  if (upload.status === 'expired' || lapsed) {
    throw new AppError(410, 'UPLOAD_EXPIRED', 'this upload was not finished in time and has been removed');
  }
  const finished = upload.status !== 'uploading';
  const final = isFinal(upload);
  const metadataHeader: Record<string, string> =
    upload.tusMetadata && Object.keys(upload.tusMetadata).length > 0 ? { 'Upload-Metadata': Metadata.stringify(upload.tusMetadata) } : {};

  switch (request.method) {
    case 'HEAD':
      // A final upload (tus concatenation) has no tus resource of its own: answered from its
      // record. Its length is the sum of its partials' lengths; its offset, until it is assembled,
      // what its partials hold so far (the specification leaves it undefined; clients resuming
      // from HEAD want a number; it reaches the length once every partial is complete).
      if (final) {
        const size = upload.size ?? 0;
        return {
          action: 'respond',
          status: 200,
          headers: {
            'Upload-Offset': String(finished ? size : Math.min(size, await partialsOffset(deps, upload))),
            'Upload-Length': String(size),
            'Upload-Concat': upload.uploadConcat ?? '',
            'Cache-Control': 'no-store',
            ...(!finished && upload.expiresAt ? { 'Upload-Expires': upload.expiresAt.toUTCString() } : {}),
            ...metadataHeader,
          },
        };
      }
      if (!finished) return { action: 'continue', upload };
      return {
        action: 'respond',
        status: 200,
        headers: {
          'Upload-Offset': String(upload.size ?? 0),
          'Upload-Length': String(upload.size ?? 0),
          'Cache-Control': 'no-store',
          ...metadataHeader,
        },
      };

    case 'PATCH':
      if (final) {
        throw new AppError(403, 'FINAL_UPLOAD_READ_ONLY', 'a final upload is assembled from its partial uploads; send bytes to those');
      }
      if (finished) {
        throw new AppError(
          409,
          'UPLOAD_COMPLETE',
          'this upload is already complete',
          { offset: upload.size },
          { 'Upload-Offset': String(upload.size ?? 0) },
        );
      }
      if (upload.size !== null) return { action: 'continue', upload };
      if (request.uploadLength !== null) {
        const size = await declareLength(deps, upload, request.uploadLength);
        return { action: 'continue', upload, maxEnd: size };
      }
      return { action: 'continue', upload, maxEnd: await reserveArriving(deps, upload, request) };

    case 'DELETE': {
      if (finished) {
        // A completed upload is a file: deleted exactly as DELETE /api/files/:id deletes it (its
        // blob reference, quota and audit), answered here so that @tus/server removes nothing:
        // shared (de-duplicated) bytes stay while another file references them.
        const removed = await removeFile(deps.db, upload.id, {
          ownerId: request.principal.ownerId,
          actor: request.principal.ownerId,
          action: AUDIT.deleted,
          status: 'deleted',
          onlyIf: COMPLETED,
        });
        if (!removed) throw notFound();
        return { action: 'respond', status: 204, headers: {}, removeObjects: removed.objectsToRemove };
      }
      if (final) {
        const removed = await removeFile(deps.db, upload.id, {
          ownerId: request.principal.ownerId,
          actor: request.principal.ownerId,
          action: AUDIT.terminated,
          status: 'deleted',
          onlyIf: ['uploading'],
        });
        return { action: 'respond', status: 204, headers: {}, removeObjects: removed?.objectsToRemove ?? [] };
      }
      await markUploadTerminated(deps.db, upload.id, request.principal.ownerId);
      return { action: 'continue', upload };
    }

    default:
      return { action: 'continue', upload };
  }
}

/** The statuses of an upload whose bytes all arrived (a file), which a tus DELETE deletes. */
const COMPLETED: UploadRow['status'][] = ['processing', 'ready', 'rejected', 'infected', 'failed'];

/** Partials whose stored offset is asked at once (a final lists at most CONCAT_MAX_PARTS). */
const OFFSET_LOOKUPS_AT_ONCE = 8;

/**
 * What the partials of a final upload waiting for assembly hold so far: the sum, over the list
 * (a partial listed twice counts twice), of each partial's stored offset (at most its length),
 * asked of the store once per distinct partial. A partial that is gone counts 0.
 */
async function partialsOffset(deps: HookDeps, final: UploadRow): Promise<number> {
  const parts = final.concatParts ?? [];
  const ids = [...new Set(parts)];
  const rows = new Map((await findUploads(deps.db, ids)).map((row) => [row.id, row]));
  const offsets = new Map<string, number>();
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++]!;
      const row = rows.get(id);
      if (!row || row.status !== 'uploading') {
        offsets.set(id, 0);
        continue;
      }
      const stored = await deps.storedOffset(id).catch((error: unknown) => {
        if (error === ERRORS.FILE_NOT_FOUND) return 0;
        throw error;
      });
      offsets.set(id, Math.min(stored, row.size ?? stored));
    }
  };
  await Promise.all(Array.from({ length: Math.min(OFFSET_LOOKUPS_AT_ONCE, ids.length) }, worker));
  return parts.reduce((sum, id) => sum + (offsets.get(id) ?? 0), 0);
}

/** creation-defer-length: the length arrives with a PATCH; policy and quota apply to it then. */
async function declareLength(deps: HookDeps, upload: UploadRow, header: string): Promise<number> {
  const size = Number(header);
  if (!/^\d+$/.test(header) || !Number.isSafeInteger(size)) {
    throw new AppError(400, 'INVALID_UPLOAD_LENGTH', 'Upload-Length must be a non-negative whole number');
  }
  if (upload.uploadConcat !== 'partial') declaredKind(deps, { filename: upload.filename, mimeType: upload.mimeType, size });
  await deps.db.transaction((tx) => reserveDeclaredLength(tx, upload, size, deps.config.quota));
  return size;
}

/**
 * An upload of unknown length: the bytes a PATCH brings are reserved before they are stored, up
 * to its Content-Length, or for a chunked body as far as the owner's limits allow (lowered to what
 * arrived by settleArrivedBytes). A body the quota cannot hold is refused (413) before any byte.
 */
async function reserveArriving(deps: HookDeps, upload: UploadRow, request: IncomingRequest): Promise<number> {
  const offset = request.uploadOffset ?? 0;
  const { maxUploadSize, quota } = deps.config;
  let end: number;
  if (request.contentLength !== null && request.contentLength !== undefined) {
    end = offset + request.contentLength;
  } else {
    const room = await reservableBytes(deps.db, upload, quota);
    // No room at all: ask for one byte more, which the quota refuses with the precise limit.
    end = room === null ? maxUploadSize : room > offset ? Math.min(room, maxUploadSize) : offset + 1;
  }
  // Past the server's size limit @tus/server answers 413 FILE_TOO_LARGE itself.
  const reserve = Math.min(end, maxUploadSize);
  if (reserve > upload.reservedBytes) await deps.db.transaction((tx) => adjustReservation(tx, upload.id, reserve, quota));
  return Math.max(reserve, upload.reservedBytes);
}

/** After a PATCH to an upload of unknown length: it holds what was stored, no more. */
export async function settleArrivedBytes(deps: HookDeps, uploadId: string, storedOffset: number): Promise<void> {
  await deps.db.transaction((tx) => adjustReservation(tx, uploadId, storedOffset, deps.config.quota));
}
