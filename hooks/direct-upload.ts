// The upload lifecycle of a direct-to-bucket upload (the client sends its bytes to the bucket with
// presigned requests; src/direct/ drives those): created exactly as a tus creation is (type policy,
// pre-create hook, quota reservation, the record `uploading`), and once its bytes are in the bucket
// checked against what was declared and allowed, then finished as onUploadFinish finishes a tus upload.
import { AUDIT } from '../src/db/audit.js';
import { removeFile } from '../src/db/files.js';
import { reserveDeclaredLength } from '../src/db/quota.js';
import type { UploadRow } from '../src/db/schema.js';
import { AppError } from '../src/errors.js';
import type { Principal } from '../src/auth/principal.js';
import { admitUpload } from '../src/webhooks/pre-create.js';
import type { HookDeps } from './deps.js';
import { finishUpload } from './on-upload-finish.js';
import { declaredFile, declaredKind } from './policy.js';

export interface DirectCreation {
  principal: Principal;
  id: string;
  /** The object key the server chose for it. */
  key: string;
  filename: string | null;
  type: string | null;
  metadata: Record<string, string>;
  /** The length, when the client declares it. */
  size: number | null;
}

export async function createDirectUpload(deps: HookDeps, creation: DirectCreation): Promise<void> {
  // The same names a tus client declares in Upload-Metadata (Uppy sends `name` and `type` too).
  const metadata: Record<string, string> = { ...creation.metadata };
  if (creation.filename) metadata.filename = creation.filename;
  if (creation.type) metadata.filetype = creation.type;
  const { filename, mimeType } = declaredFile(metadata, null);
  const kind = declaredKind(deps, { filename, mimeType, size: creation.size });
  const appMetadata = await admitUpload(deps.preCreate, {
    owner: creation.principal.ownerId,
    filename,
    size: creation.size,
    mimeType,
    kind,
    metadata,
    protocol: 's3-direct',
  });
  await deps.records.create({
    id: creation.id,
    ownerId: creation.principal.ownerId,
    filename,
    mimeType,
    kind,
    size: creation.size,
    tusMetadata: metadata,
    appMetadata,
    transport: 's3-direct',
    storageKey: creation.key,
    expiresAt: new Date(Date.now() + deps.config.uploadExpiryMs),
  });
}

/**
 * The bytes are in the bucket (`storedSize` of them): refused unless they are what was declared
 * and what the type policy and the owner's quota allow; then finished (processing enqueued with
 * the record's change, in one statement). True when this call started its processing.
 */
export async function finishDirectUpload(deps: HookDeps, upload: UploadRow, storedSize: number): Promise<boolean> {
  if (upload.size !== null && storedSize !== upload.size) {
    throw new AppError(
      storedSize > upload.size ? 413 : 400,
      'SIZE_MISMATCH',
      `the uploaded object has ${storedSize} bytes but ${upload.size} were declared`,
      { declared: upload.size, stored: storedSize },
    );
  }
  declaredKind(deps, { filename: upload.filename, mimeType: upload.mimeType, size: storedSize });
  if (upload.size === null) await deps.db.transaction((tx) => reserveDeclaredLength(tx, upload, storedSize, deps.config.quota));
  return finishUpload(deps, upload.id, storedSize);
}

/**
 * Ends an unfinished direct upload (aborted by its owner, or refused on completion): the record
 * goes and its reservation is released. Returns the keys to remove from storage, after the commit.
 */
export async function discardDirectUpload(deps: HookDeps, upload: UploadRow): Promise<string[]> {
  const removed = await removeFile(deps.db, upload.id, {
    ownerId: upload.ownerId,
    actor: upload.ownerId,
    action: AUDIT.terminated,
    status: 'deleted',
    onlyIf: ['uploading'],
  });
  return removed?.objectsToRemove ?? [];
}
