// onIncomingRequest: runs before @tus/server sees a HEAD, PATCH or DELETE on an upload. It makes
// ownership and the record's status authoritative for the tus endpoint:
// - another owner's upload is answered exactly like a missing one (404, same body);
// - a finished upload is answered from its record (HEAD), refused for more bytes (PATCH 409)
//   and for termination (DELETE 409: files are deleted through the files API);
// - a deferred length declared by a PATCH is checked against the policy and quota first;
// - termination updates the record before the bytes go (see markUploadTerminated).
import { Metadata } from '@tus/utils';
import type { Principal } from '../src/auth/principal.js';
import { AppError, notFound } from '../src/errors.js';
import { AUDIT } from '../src/db/audit.js';
import { isFinal } from '../src/db/concat.js';
import { removeFile } from '../src/db/files.js';
import { findUpload, markUploadTerminated } from '../src/db/uploads.js';
import { adjustReservation, reservableBytes, reserveDeclaredLength } from '../src/db/quota.js';
import type { UploadRow } from '../src/db/schema.js';
import { UPLOAD_ID_PATTERN } from '../src/tus/target.js';
import { declaredKind } from './policy.js';
import type { HookDeps } from './deps.js';


export type IncomingDecision =
  | {
      action: 'continue';
      upload: UploadRow;
      /** For a PATCH to an upload of unknown length: where its bytes must end (what is reserved). */
      maxEnd?: number;
    }
  | {
      action: 'respond';
      status: number;
      headers: Record<string, string>;
      /** Stored objects the caller removes after answering (a terminated final upload). */
      removeObjects?: string[];
    };

export interface IncomingRequest {
  method: string;
  uploadId: string;
  principal: Principal;
  /** Upload-Length sent on a PATCH (declaring a deferred length). */
  uploadLength: string | null;
  /** A PATCH's Upload-Offset (validated) and Content-Length (null for a chunked body). */
  uploadOffset?: number;
  contentLength?: number | null;
}

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
      // record. Before assembly it has a length but, per the specification, no offset.
      if (final) {
        return {
          action: 'respond',
          status: 200,
          headers: {
            'Upload-Length': String(upload.size ?? 0),
            'Upload-Concat': upload.uploadConcat ?? '',
            'Cache-Control': 'no-store',
            ...(finished
              ? { 'Upload-Offset': String(upload.size ?? 0) }
              : upload.expiresAt
                ? { 'Upload-Expires': upload.expiresAt.toUTCString() }
                : {}),
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
        throw new AppError(
          409,
          'UPLOAD_FINISHED',
          `this upload is finished; delete the file with DELETE /api/files/${upload.id}`,
        );
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
