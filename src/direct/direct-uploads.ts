// Direct-to-bucket uploads (STORAGE=s3): the server authorises, records and presigns; the client
// sends the bytes straight to the bucket. Each operation finds the caller's upload from the key (and
// multipart upload id) it names — another owner's, a missing one and a mismatched pair all answer
// 404 — and the record lifecycle is hooks/direct-upload.ts's, so that once the bytes are in the
// bucket the upload is finished and processed exactly like a tus upload.
import { createHash, randomBytes } from 'node:crypto';
import type { Principal } from '../auth/principal.js';
import { attachMultipartUpload } from '../db/direct-uploads.js';
import type { UploadRow } from '../db/schema.js';
import { findUpload, touchUpload } from '../db/uploads.js';
import { AppError, badRequest, conflict, notFound } from '../errors.js';
import type { DirectBucket, PresignableOperation, UploadedPart } from '../storage/s3-direct.js';
import { removeUnreferenced } from '../storage/remove-unreferenced.js';
import { DIRECT_PREFIX, type ObjectStorage } from '../storage/types.js';
import type { HookDeps } from '../../hooks/deps.js';
import { createDirectUpload, discardDirectUpload, finishDirectUpload } from '../../hooks/direct-upload.js';

export interface DirectUploadDeps {
  hooks: HookDeps;
  bucket: DirectBucket;
  storage: ObjectStorage;
}

export interface DeclaredFile {
  filename: string | null;
  type: string | null;
  metadata: Record<string, string>;
  size: number | null;
}

export interface CompletedUpload {
  location: string;
  key: string;
  fileId: string;
}

/** One S3 request of @uppy/aws-s3's `signRequest`, as its PresignableRequest describes it. */
export interface SignRequest {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  key: string;
  uploadId?: string | undefined;
  partNumber?: number | undefined;
  contentType?: string | undefined;
}

const KEY_PATTERN = new RegExp(`^${DIRECT_PREFIX}([0-9a-f]{16})/([0-9a-f]{32})$`);

/** The owner's folder in the bucket: a digest, so owner ids (e-mail addresses…) never show in URLs. */
function ownerFolder(ownerId: string): string {
  return createHash('sha256').update(ownerId).digest('hex').slice(0, 16);
}

export function directKey(ownerId: string, id: string): string {
  return `${DIRECT_PREFIX}${ownerFolder(ownerId)}/${id}`;
}

/** Parts as a client lists them must be exactly the parts the bucket holds (none missing, none extra). */
export function samePartList(listed: ReadonlyArray<{ PartNumber: number; ETag: string }>, stored: readonly UploadedPart[]): boolean {
  if (listed.length !== stored.length || new Set(listed.map((part) => part.PartNumber)).size !== listed.length) return false;
  const etags = new Map(stored.map((part) => [part.PartNumber, unquote(part.ETag)]));
  return listed.every((part) => etags.get(part.PartNumber) === unquote(part.ETag));
}

const unquote = (etag: string) => etag.replace(/^"|"$/g, '');

/** The S3 operation on an existing multipart upload that a signRequest request names. */
export function multipartOperation(method: SignRequest['method'], uploadId: string, partNumber: number | undefined): PresignableOperation {
  switch (method) {
    case 'PUT':
      if (partNumber === undefined) throw badRequest('UNSUPPORTED_OPERATION', 'a PUT of a multipart upload names its partNumber');
      return { operation: 'uploadPart', uploadId, partNumber };
    case 'GET':
      return { operation: 'listParts', uploadId };
    case 'POST':
      return { operation: 'completeMultipartUpload', uploadId };
    case 'DELETE':
      return { operation: 'abortMultipartUpload', uploadId };
  }
}

export function directUploads(deps: DirectUploadDeps) {
  const { hooks, bucket, storage } = deps;
  const fileLocation = (id: string) => `${hooks.config.publicUrl ?? ''}/api/files/${id}`;

  /** The caller's unfinished upload at `key` whose multipart upload is `uploadId`; anything else is a 404. */
  async function ownedUpload(principal: Principal, key: string, uploadId: string): Promise<UploadRow> {
    const upload = await findByKey(principal, key);
    if (upload.status !== 'uploading' || upload.directUploadId !== uploadId) throw notFound();
    assertNotLapsed(upload);
    return upload;
  }

  async function findByKey(principal: Principal, key: string): Promise<UploadRow> {
    const match = KEY_PATTERN.exec(key);
    if (!match || match[1] !== ownerFolder(principal.ownerId)) throw notFound();
    const upload = await findUpload(hooks.db, match[2]!);
    if (!upload || upload.ownerId !== principal.ownerId || upload.transport !== 's3-direct' || upload.status === 'deleted') throw notFound();
    return upload;
  }

  function assertNotLapsed(upload: UploadRow): void {
    if (upload.expiresAt !== null && upload.expiresAt.getTime() < Date.now()) {
      throw new AppError(410, 'UPLOAD_EXPIRED', 'this upload was not finished in time and has been removed');
    }
  }

  /** Activity keeps an unfinished upload alive, as each PATCH does for a tus upload. */
  const touch = (upload: UploadRow) => touchUpload(hooks.db, upload.id, new Date(Date.now() + hooks.config.uploadExpiryMs));

  async function create(principal: Principal, file: DeclaredFile): Promise<{ id: string; key: string }> {
    const id = randomBytes(16).toString('hex');
    const key = directKey(principal.ownerId, id);
    await createDirectUpload(hooks, { principal, id, key, ...file });
    return { id, key };
  }

  /** Ends an unfinished upload: record and reservation go, then its bytes (or multipart upload). */
  async function discard(upload: UploadRow): Promise<void> {
    await removeUnreferenced(storage, await discardDirectUpload(hooks, upload), hooks.logger);
  }

  /** Refuses an upload whose bytes are not acceptable (the client's error): nothing of it stays. */
  async function refuse(upload: UploadRow, error: unknown): Promise<never> {
    if (error instanceof AppError) await discard(upload);
    throw error;
  }

  /** The bytes are at the upload's key: checked, then finished (or refused and removed). */
  async function finish(upload: UploadRow, key: string): Promise<CompletedUpload> {
    const size = await storage.size(key);
    if (size === null) throw conflict('NOT_UPLOADED', 'nothing has been uploaded to this key yet');
    await finishDirectUpload(hooks, upload, size).catch((error: unknown) => refuse(upload, error));
    return { location: fileLocation(upload.id), key, fileId: upload.id };
  }

  /** A new upload whose bytes come in one presigned POST: its policy allows at most the declared (or largest allowed) size. */
  async function presignedPost(principal: Principal, file: DeclaredFile): Promise<{ url: string; fields: Record<string, string> }> {
    const { key } = await create(principal, file);
    return bucket.presignPost(key, file.size ?? hooks.config.maxUploadSize, file.type);
  }

  return {
    /** POST /api/s3/multipart */
    async createMultipart(principal: Principal, file: DeclaredFile): Promise<{ key: string; uploadId: string }> {
      const { id, key } = await create(principal, file);
      let uploadId: string;
      try {
        uploadId = await bucket.createMultipartUpload(key, file.type);
        await attachMultipartUpload(hooks.db, id, uploadId);
      } catch (error) {
        const upload = await findUpload(hooks.db, id);
        if (upload) await discard(upload);
        throw error;
      }
      return { key, uploadId };
    },

    /** GET /api/s3/multipart/:uploadId/:partNumber and its batch form. */
    async signParts(principal: Principal, key: string, uploadId: string, partNumbers: number[]): Promise<Record<string, string>> {
      const upload = await ownedUpload(principal, key, uploadId);
      await touch(upload);
      const urls: Record<string, string> = {};
      for (const partNumber of partNumbers) urls[partNumber] = await bucket.presignPart(key, uploadId, partNumber);
      return urls;
    },

    /** GET /api/s3/multipart/:uploadId: the parts the bucket has (to resume after a reload). */
    async listParts(principal: Principal, key: string, uploadId: string): Promise<UploadedPart[]> {
      await ownedUpload(principal, key, uploadId);
      const parts = await bucket.listParts(key, uploadId);
      if (parts === null) throw notFound();
      return parts;
    },

    /** POST /api/s3/multipart/:uploadId/complete */
    async complete(
      principal: Principal,
      key: string,
      uploadId: string,
      parts: Array<{ PartNumber: number; ETag: string }>,
    ): Promise<CompletedUpload> {
      const upload = await findByKey(principal, key);
      if (upload.directUploadId !== uploadId) throw notFound();
      // A retried completion (its answer was lost) gets the same answer.
      if (upload.status !== 'uploading' && upload.status !== 'expired') return { location: fileLocation(upload.id), key, fileId: upload.id };
      if (upload.status !== 'uploading') throw notFound();
      assertNotLapsed(upload);
      const stored = await bucket.listParts(key, uploadId);
      // No multipart upload any more: a completion whose finish failed left the object.
      if (stored !== null) {
        if (!samePartList(parts, stored)) {
          await refuse(upload, badRequest('PARTS_MISMATCH', 'the parts listed are not the parts uploaded (one is missing, extra or changed)', {
            listed: parts.length,
            uploaded: stored.length,
          }));
        }
        if (!(await bucket.completeMultipartUpload(key, uploadId, [...parts].sort((a, b) => a.PartNumber - b.PartNumber)))) {
          await refuse(upload, badRequest('PARTS_MISMATCH', 'the bucket refused the list of parts'));
        }
      }
      return finish(upload, key);
    },

    /** DELETE /api/s3/multipart/:uploadId */
    async abort(principal: Principal, key: string, uploadId: string): Promise<void> {
      // The multipart upload goes with the key (the storage aborts any at a direct key).
      await discard(await ownedUpload(principal, key, uploadId));
    },

    /** GET /api/s3/params: a presigned POST of a small file. */
    async presignPost(principal: Principal, file: DeclaredFile): Promise<{ method: 'POST'; url: string; fields: Record<string, string> }> {
      return { method: 'POST', ...(await presignedPost(principal, file)) };
    },

    /** POST /api/s3/confirm: the object of a presigned POST (or a signRequest upload) has landed. */
    async confirm(principal: Principal, key: string): Promise<CompletedUpload> {
      const upload = await findByKey(principal, key);
      if (upload.status !== 'uploading') {
        if (upload.status === 'expired') throw notFound();
        return { location: fileLocation(upload.id), key, fileId: upload.id };
      }
      assertNotLapsed(upload);
      // A multipart upload still open has no object yet: its bytes are not all there.
      if (upload.directUploadId !== null && (await bucket.listParts(key, upload.directUploadId)) !== null) {
        throw conflict('NOT_UPLOADED', 'the multipart upload of this key is not complete yet');
      }
      return finish(upload, key);
    },

    /**
     * POST /api/s3/sign: presigns one S3 request of @uppy/aws-s3's `signRequest` for the caller's
     * own upload. Creating a multipart upload (or a single PUT) creates the record first, at a key
     * the server chooses; completing one is the client's request to the bucket, then /confirm.
     */
    async sign(
      principal: Principal,
      request: SignRequest,
      file: DeclaredFile,
    ): Promise<{ url: string; key?: string; fields?: Record<string, string>; headers?: Record<string, string> }> {
      if (request.uploadId === undefined) {
        const type = file.type ?? request.contentType ?? null;
        if (request.method === 'POST') {
          const { key } = await create(principal, { ...file, type });
          return { url: await bucket.presign(key, { operation: 'createMultipartUpload', contentType: type }), key, ...(type ? { headers: { 'Content-Type': type } } : {}) };
        }
        // A single PutObject becomes a presigned POST, whose policy bounds the size.
        if (request.method === 'PUT') return presignedPost(principal, { ...file, type });
        throw badRequest('UNSUPPORTED_OPERATION', 'only uploads are presigned: create, parts, list parts, complete, abort');
      }
      const upload = await findByKey(principal, request.key);
      if (upload.status !== 'uploading') throw notFound();
      assertNotLapsed(upload);
      if (upload.directUploadId === null) {
        // The client created the multipart upload itself (with a URL presigned here): the first
        // request that names it ties it to the record, once the bucket confirms it is at this key.
        if ((await bucket.listParts(request.key, request.uploadId)) === null) throw notFound();
        if (!(await attachMultipartUpload(hooks.db, upload.id, request.uploadId))) throw notFound();
      } else if (upload.directUploadId !== request.uploadId) {
        throw notFound();
      }
      await touch(upload);
      return { url: await bucket.presign(request.key, multipartOperation(request.method, request.uploadId, request.partNumber)) };
    },
  };
}

export type DirectUploads = ReturnType<typeof directUploads>;
