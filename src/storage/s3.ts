// S3-compatible storage (AWS S3, Cloudflare R2, MinIO, moto): @tus/s3-store writes <id> (bytes,
// via a multipart upload), <id>.info (tus info) and <id>.part (an incomplete trailing part).
import type { ReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { finished, Readable } from 'node:stream';
import { Upload } from '@aws-sdk/lib-storage';
import { S3, type Part, type S3ClientConfig, type StorageClass } from '@aws-sdk/client-s3';
import { S3Store, type MetadataValue } from '@tus/s3-store';
import { ERRORS, type KvStore, type Upload as TusUpload } from '@tus/utils';
import {
  DIRECT_PREFIX,
  ObjectArchivedError,
  ObjectNotFoundError,
  StorageUnavailableError,
  type ByteRange,
  type ObjectClass,
  type ObjectStorage,
  type StorageClasses,
  type StoredObject,
} from './types.js';
import { reportDurableProgress } from './durable-progress.js';

const TUS_SUFFIXES = ['.info', '.part'];
// S3 copies up to 5 GiB in one CopyObject; larger objects are copied part by part.
const MAX_SINGLE_COPY = 5 * 2 ** 30;
const COPY_PART_SIZE = 512 * 2 ** 20;
// Every part of a multipart upload but the last must be at least this large.
const MIN_PART_SIZE = 5 * 2 ** 20;

export interface S3StorageOptions {
  bucket: string;
  endpoint?: string | undefined;
  region: string;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  forcePathStyle: boolean;
  partSize: number;
  expirationMs: number;
}

/**
 * S3Store keeps a per-process cache of each upload's info object. With several server processes
 * behind a load balancer that cache goes stale (a deferred length declared on one instance is
 * unknown to another), so every read goes to the bucket instead.
 */
class NoCache implements KvStore<MetadataValue> {
  async get(): Promise<MetadataValue | undefined> {
    return undefined;
  }
  async set(): Promise<void> {}
  async delete(): Promise<void> {}
}

function errorName(error: unknown): string {
  const e = error as { name?: string; Code?: string };
  return e?.name ?? e?.Code ?? '';
}

function isNotFound(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  return ['NoSuchKey', 'NotFound', 'NoSuchUpload'].includes(errorName(error)) || status === 404;
}

export function unavailable(action: string, key: string, error: unknown): Error {
  if (isNotFound(error)) return new ObjectNotFoundError(key);
  if (errorName(error) === 'InvalidObjectState') return new ObjectArchivedError(key);
  return new StorageUnavailableError(`S3 ${action} ${key} failed: ${(error as Error)?.message ?? error}`, { cause: error });
}

/**
 * A failure of S3 in a tus store call, as the client should see it: tus's own errors (with a
 * status) stay; a missing object is tus's 404; anything else (network, 5xx, throttling) is storage
 * being unavailable, a 503 worth retrying, not the AWS SDK's raw error (whose ECONNREFUSED would
 * pass for the database's).
 */
function tusStoreError(action: string, id: string, error: unknown): unknown {
  if (typeof (error as { status_code?: unknown })?.status_code === 'number') return error;
  if (isNotFound(error)) return ERRORS.FILE_NOT_FOUND;
  return new StorageUnavailableError(`S3 ${action} ${id} failed: ${(error as Error)?.message ?? error}`, { cause: error });
}

/**
 * What one S3Store.write() does with the upload's incomplete trailing part (`<id>.part`, the
 * bytes of a PATCH too small for a multipart part). S3Store deletes that object as soon as it has
 * read it and only then uploads those bytes again inside the next part: if S3 (or the process)
 * fails in between, bytes already acknowledged to the client are gone. We keep it until its bytes
 * are safely in a part, and mark each `.part` with the number of the part it will become the start
 * of: once a part with that number exists the `.part` is stale (its bytes are in the part) and is
 * ignored, so a crash between uploading the part and deleting the `.part` cannot count them twice.
 */
interface WriteState {
  /** The upload's parts when the write began. */
  parts?: Part[];
  /** The highest part number this write has started to upload. */
  lastPart?: number;
  /** A live `.part` existed when the write began (its bytes go into this write's first part). */
  consumedPart: boolean;
  /** This write stored a new `.part` (which replaced the old one). */
  storedPart: boolean;
  /** The `.part` had no marker (written before it existed): handled the way S3Store does. */
  unmarkedPart: boolean;
  /** Sizes of this write's parts that S3 has stored, by part number (durable progress). */
  storedParts?: Map<number, number>;
}
/** User metadata on `<id>.part`: the number of the part its bytes will begin (x-amz-meta-…). */
const PART_BEFORE = 'tus-part-before';

/** The byte size of a part S3Store uploads (a chunk file it split off, or a buffer); null if unknown. */
async function partSize(body: Readable | Buffer): Promise<number | null> {
  if (Buffer.isBuffer(body)) return body.length;
  const file = (body as Partial<ReadStream>).path;
  if (file === undefined) return null;
  return stat(file).then(
    (info) => info.size,
    () => null,
  );
}

/** The answer to an S3 request, or undefined when the object does not exist. */
async function ifExists<T>(request: Promise<T>): Promise<T | undefined> {
  try {
    return await request;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

function isStalePart(partBefore: string | undefined, parts: Part[]): boolean {
  // A `.part` written before this marker existed is trusted, as S3Store does.
  if (partBefore === undefined) return false;
  return parts.some((part) => part.PartNumber === Number(partBefore));
}

/**
 * The body as S3Store may consume it. S3Store puts the `.part` in front of the body with
 * multistream, which waits forever for a body that failed before it was handed over (the client
 * went away while S3Store was still reading the upload's state from S3) or that was destroyed
 * without an error: the write, and with it the upload's lock, would never end. This body fails
 * (ERR_STREAM_PREMATURE_CLOSE, or the body's own error) once its consumer listens for errors.
 */
function failsWhenConsumed(src: Readable): Readable {
  const body = new Readable({
    highWaterMark: src.readableHighWaterMark,
    read() {
      src.resume();
    },
    destroy(error, callback) {
      if (!src.destroyed) src.destroy(error ?? undefined);
      callback(error);
    },
  });
  src.on('data', (chunk: Buffer) => {
    if (!body.push(chunk)) src.pause();
  });
  // Only the side S3Store reads counts (the body may be a Transform still open for writing).
  finished(src, { writable: false }, (error) => {
    if (!error) {
      body.push(null);
      return;
    }
    if (body.destroyed) return;
    if (body.listenerCount('error') > 0) {
      body.destroy(error);
      return;
    }
    const onListener = (event: string | symbol) => {
      if (event !== 'error') return;
      body.off('newListener', onListener);
      // 'newListener' comes before the listener is added.
      process.nextTick(() => body.destroy(error));
    };
    body.on('newListener', onListener);
  });
  return body;
}

/**
 * S3Store completes the multipart upload right after the last part arrives. A process killed in
 * between leaves every byte in the bucket but no object; the reconciler finishes the job.
 *
 * Its failures reach clients as storage errors (see tusStoreError): S3Store itself reports any
 * failure to read an upload's info object as FILE_NOT_FOUND, so while S3 was unreachable clients
 * were told their uploads were gone (tus-js-client then gives up on a PATCH, or starts over).
 */
class CompletableS3Store extends S3Store {
  /**
   * The write in progress per upload id (the tus lock allows one at a time). Keyed by id, not an
   * AsyncLocalStorage: S3Store calls uploadPart from stream events, which run in the context of
   * whatever socket emitted them, not of the write.
   */
  private readonly writes = new Map<string, WriteState>();

  override async getUpload(id: string): Promise<TusUpload> {
    try {
      return await super.getUpload(id);
    } catch (error) {
      if (error !== ERRORS.FILE_NOT_FOUND) throw tusStoreError('read', id, error);
      // Only a missing info object means the upload does not exist.
      try {
        await this.getMetadata(id);
      } catch (cause) {
        throw isNotFound(cause) ? error : tusStoreError('read', id, cause);
      }
      return super.getUpload(id).catch((again: unknown) => Promise.reject(tusStoreError('read', id, again)));
    }
  }

  override async create(upload: TusUpload): Promise<TusUpload> {
    return super.create(upload).catch((error: unknown) => Promise.reject(tusStoreError('create', upload.id, error)));
  }

  override async write(src: Readable, id: string, offset: number): Promise<number> {
    const state: WriteState = { consumedPart: false, storedPart: false, unmarkedPart: false };
    try {
      this.writes.set(id, state);
      const newOffset = await super.write(failsWhenConsumed(src), id, offset).finally(() => this.writes.delete(id));
      // The old `.part`'s bytes are in a part now (or it was overwritten by a new `.part`).
      if (state.consumedPart && !state.storedPart) await this.removeIncompletePart(id);
      return newOffset;
    } catch (error) {
      throw tusStoreError('write', id, error);
    }
  }

  protected override async retrieveParts(id: string, partNumberMarker?: string): Promise<Part[]> {
    const parts = await super.retrieveParts(id, partNumberMarker);
    const state = this.writes.get(id);
    if (state && partNumberMarker === undefined && state.parts === undefined) state.parts = parts;
    return parts;
  }

  protected override async uploadPart(metadata: MetadataValue, readStream: Readable | Buffer, partNumber: number): Promise<string> {
    // Called in part order as the body is split, before the upload of that part starts.
    const id = metadata.file.id;
    const state = this.writes.get(id);
    if (state) state.lastPart = Math.max(state.lastPart ?? 0, partNumber);
    // The upload starts at once, as it did before progress was reported: with the part sized first
    // (an await), a resumed upload after a refused part came out corrupt in CI runs.
    const sizing = state ? partSize(readStream) : Promise.resolve(null);
    const etag = await super.uploadPart(metadata, readStream, partNumber);
    const size = await sizing;
    if (state && size !== null) this.reportStoredPart(id, state, partNumber, size);
    return etag;
  }

  /**
   * A part is stored: the upload's bytes are durable up to the end of the last part of an unbroken
   * run from this write's first one (parts finish out of order; a `.part` this write consumed is
   * inside its first part, and stale once that part exists).
   */
  private reportStoredPart(id: string, state: WriteState, partNumber: number, size: number): void {
    if (state.parts === undefined) return;
    const stored = (state.storedParts ??= new Map());
    stored.set(partNumber, size);
    const first = (state.parts.at(-1)?.PartNumber ?? 0) + 1;
    if (!stored.has(first)) return;
    let offset = state.parts.reduce((sum, part) => sum + (part.Size ?? 0), 0);
    for (let next = first; stored.has(next); next++) offset += stored.get(next)!;
    reportDurableProgress(id, offset);
  }

  protected override async uploadIncompletePart(id: string, readStream: Readable): Promise<string> {
    const state = this.writes.get(id);
    if (state?.parts === undefined) return super.uploadIncompletePart(id, readStream);
    // The trailing chunk of this write: it will begin the part after the last one started here
    // (or after the parts that existed, if this write started none).
    const partBefore = (state.lastPart ?? state.parts.at(-1)?.PartNumber ?? 0) + 1;
    const data = await this.client.putObject({
      Bucket: this.bucket,
      Key: this.partKey(id, true),
      Body: readStream,
      Metadata: { [PART_BEFORE]: String(partBefore) },
      Tagging: this.useCompleteTag('false'),
    });
    state.storedPart = true;
    return data.ETag ?? '';
  }

  protected override async getIncompletePart(id: string): Promise<Readable | undefined> {
    const state = this.writes.get(id);
    if (state?.parts === undefined) return super.getIncompletePart(id);
    const object = await ifExists(this.client.getObject({ Bucket: this.bucket, Key: this.partKey(id, true) }));
    if (!object) return undefined;
    if (isStalePart(object.Metadata?.[PART_BEFORE], state.parts)) {
      (object.Body as Readable | undefined)?.destroy();
      await this.removeIncompletePart(id);
      return undefined;
    }
    // Unmarked, it would count twice if this write stopped after a part took its bytes: it goes
    // right away instead, as S3Store does (see deleteIncompletePart).
    if (object.Metadata?.[PART_BEFORE] === undefined) state.unmarkedPart = true;
    else state.consumedPart = true;
    return object.Body as Readable;
  }

  protected override async getIncompletePartSize(id: string): Promise<number | undefined> {
    const head = await ifExists(this.client.headObject({ Bucket: this.bucket, Key: this.partKey(id, true) }));
    if (!head) return undefined;
    const partBefore = head.Metadata?.[PART_BEFORE];
    if (partBefore !== undefined && isStalePart(partBefore, await this.retrieveParts(id))) return undefined;
    return head.ContentLength;
  }

  protected override async deleteIncompletePart(id: string): Promise<void> {
    // Inside a write a marked `.part` stays until its bytes are safe (see write()).
    const state = this.writes.get(id);
    if (state && !state.unmarkedPart) return;
    await super.deleteIncompletePart(id);
  }

  /** A `.part` whose bytes are in a part: deleting it is tidiness, the marker already voids it. */
  private async removeIncompletePart(id: string): Promise<void> {
    await super.deleteIncompletePart(id).catch(() => {});
  }

  override async declareUploadLength(id: string, length: number): Promise<void> {
    return super.declareUploadLength(id, length).catch((error: unknown) => Promise.reject(tusStoreError('update', id, error)));
  }

  override async remove(id: string): Promise<void> {
    await super.remove(id).catch((error: unknown) => Promise.reject(tusStoreError('remove', id, error)));
    // S3Store deletes `<id>` and `<id>.info` only; a `.part` left behind is never listed again.
    await this.removeIncompletePart(id);
  }

  async completeIfAllPartsArrived(id: string): Promise<boolean> {
    let metadata;
    try {
      metadata = await this.getMetadata(id);
    } catch (error) {
      // No tus info: an object we wrote ourselves (an assembled final upload), nothing to complete.
      if (isNotFound(error)) return false;
      throw error;
    }
    let parts;
    try {
      parts = await this.retrieveParts(id);
    } catch (error) {
      if (isNotFound(error)) return false; // already completed (or aborted)
      throw error;
    }
    const received = parts.reduce((sum, part) => sum + (part.Size ?? 0), 0);
    if (metadata.file.size === undefined || received !== metadata.file.size) return false;
    await this.finishMultipartUpload(metadata, parts);
    return true;
  }
}

/** Streams an object (or a byte range of it) of a bucket. */
export async function readObject(client: S3, bucket: string, key: string, range?: ByteRange): Promise<Readable> {
  try {
    const { Body } = await client.getObject({ Bucket: bucket, Key: key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) });
    if (!Body) throw new ObjectNotFoundError(key);
    return Body as Readable;
  } catch (error) {
    if (error instanceof ObjectNotFoundError) throw error;
    // InvalidObjectState (an archived object without a restored copy) becomes ObjectArchivedError here.
    throw unavailable('read', key, error);
  }
}

/**
 * HeadObject's `Restore` header (`ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00
 * GMT"`): null when absent or unreadable.
 */
export function parseRestoreHeader(header: string | undefined): ObjectClass['restore'] {
  const ongoing = header ? /ongoing-request="(true|false)"/.exec(header) : null;
  if (!ongoing) return null;
  const expiry = /expiry-date="([^"]+)"/.exec(header ?? '');
  const expiresAt = expiry?.[1] ? new Date(expiry[1]) : null;
  return { ongoing: ongoing[1] === 'true', expiresAt: expiresAt && !Number.isNaN(expiresAt.getTime()) ? expiresAt : null };
}

/** The AWS SDK client settings for the configured bucket (shared with the presigner, s3-direct.ts). */
export function s3ClientConfig(options: Omit<S3StorageOptions, 'partSize' | 'expirationMs'>): S3ClientConfig {
  return {
    region: options.region,
    forcePathStyle: options.forcePathStyle,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.accessKeyId && options.secretAccessKey
      ? { credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey } }
      : {}),
  };
}

export function createS3Storage(options: S3StorageOptions): ObjectStorage {
  const clientConfig = s3ClientConfig(options);
  const tusStore = new CompletableS3Store({
    partSize: options.partSize,
    cache: new NoCache(),
    expirationPeriodInMilliseconds: options.expirationMs,
    // Expiration is enforced by our lifecycle job from the database, not by bucket tag rules.
    useTags: false,
    s3ClientConfig: { ...clientConfig, bucket: options.bucket },
  });
  const client = new S3(clientConfig);
  const Bucket = options.bucket;

  /** A multipart upload whose parts are server-side copies of whole objects (or ranges of them). */
  async function copyParts(targetKey: string, sources: Array<{ key: string; size: number }>): Promise<void> {
    const { UploadId } = await client.createMultipartUpload({ Bucket, Key: targetKey });
    try {
      const parts = [];
      let partNumber = 1;
      for (const source of sources) {
        const copySource = `${Bucket}/${encodeURIComponent(source.key).replace(/%2F/g, '/')}`;
        // A source larger than S3's 5 GiB copy limit is copied in ranges.
        for (let start = 0; start < source.size; start += MAX_SINGLE_COPY) {
          const end = Math.min(start + MAX_SINGLE_COPY, source.size) - 1;
          const { CopyPartResult } = await client.uploadPartCopy({
            Bucket,
            Key: targetKey,
            UploadId,
            PartNumber: partNumber,
            CopySource: copySource,
            CopySourceRange: `bytes=${start}-${end}`,
          });
          parts.push({ ETag: CopyPartResult?.ETag, PartNumber: partNumber++ });
        }
      }
      await client.completeMultipartUpload({ Bucket, Key: targetKey, UploadId, MultipartUpload: { Parts: parts } });
    } catch (error) {
      await client.abortMultipartUpload({ Bucket, Key: targetKey, UploadId }).catch(() => {});
      throw error;
    }
  }

  async function abortMultipartUploadsAt(key: string): Promise<void> {
    const { Uploads } = await client.listMultipartUploads({ Bucket, Prefix: key });
    for (const upload of Uploads ?? []) {
      if (upload.Key !== key || !upload.UploadId) continue;
      await ifExists(client.abortMultipartUpload({ Bucket, Key: key, UploadId: upload.UploadId }));
    }
  }

  /**
   * A server-side copy; with `target`, in that storage class (a multipart copy does not carry the
   * source's type and metadata over by itself, so they are given).
   */
  async function copy(
    fromKey: string,
    toKey: string,
    size: number,
    target?: { storageClass: string; contentType?: string | undefined; metadata?: Record<string, string> | undefined },
  ): Promise<void> {
    const source = `${Bucket}/${encodeURIComponent(fromKey).replace(/%2F/g, '/')}`;
    const StorageClass = target?.storageClass as StorageClass | undefined;
    if (size <= MAX_SINGLE_COPY) {
      await client.copyObject({ Bucket, Key: toKey, CopySource: source, ...(StorageClass ? { StorageClass } : {}) });
      return;
    }
    const { UploadId } = await client.createMultipartUpload({
      Bucket,
      Key: toKey,
      ...(target ? { StorageClass, ContentType: target.contentType, Metadata: target.metadata } : {}),
    });
    try {
      const parts = [];
      for (let start = 0, partNumber = 1; start < size; start += COPY_PART_SIZE, partNumber++) {
        const end = Math.min(start + COPY_PART_SIZE, size) - 1;
        const { CopyPartResult } = await client.uploadPartCopy({
          Bucket,
          Key: toKey,
          UploadId,
          PartNumber: partNumber,
          CopySource: source,
          CopySourceRange: `bytes=${start}-${end}`,
        });
        parts.push({ ETag: CopyPartResult?.ETag, PartNumber: partNumber });
      }
      await client.completeMultipartUpload({ Bucket, Key: toKey, UploadId, MultipartUpload: { Parts: parts } });
    } catch (error) {
      await client.abortMultipartUpload({ Bucket, Key: toKey, UploadId }).catch(() => {});
      throw error;
    }
  }

  const classes: StorageClasses = {
    async inspect(key: string): Promise<ObjectClass | null> {
      try {
        const head = await client.headObject({ Bucket, Key: key });
        // S3 leaves the header out for STANDARD.
        return { storageClass: head.StorageClass ?? 'STANDARD', restore: parseRestoreHeader(head.Restore) };
      } catch (error) {
        if (isNotFound(error)) return null;
        throw unavailable('stat', key, error);
      }
    },

    async changeClass(key: string, storageClass: string): Promise<void> {
      try {
        const head = await client.headObject({ Bucket, Key: key });
        if ((head.StorageClass ?? 'STANDARD') === storageClass) return;
        await copy(key, key, head.ContentLength ?? 0, { storageClass, contentType: head.ContentType, metadata: head.Metadata });
      } catch (error) {
        throw unavailable('change the storage class of', key, error);
      }
    },

    async restore(key: string, days: number): Promise<'started' | 'ongoing' | 'restored'> {
      try {
        const answer = await client.restoreObject({ Bucket, Key: key, RestoreRequest: { Days: days } });
        // 202: a restore began; 200: a restored copy is there already (its expiry was extended).
        return answer.$metadata.httpStatusCode === 200 ? 'restored' : 'started';
      } catch (error) {
        if (errorName(error) === 'RestoreAlreadyInProgress') return 'ongoing';
        throw unavailable('restore', key, error);
      }
    },
  };

  return {
    backend: 's3',
    tusStore,
    classes,

    async completeUpload(key: string): Promise<void> {
      try {
        await tusStore.completeIfAllPartsArrived(key);
      } catch (error) {
        throw unavailable('complete', key, error);
      }
    },

    read: (key: string, range?: ByteRange) => readObject(client, Bucket, key, range),

    async size(key: string): Promise<number | null> {
      try {
        const head = await client.headObject({ Bucket, Key: key });
        return head.ContentLength ?? 0;
      } catch (error) {
        if (isNotFound(error)) return null;
        throw unavailable('stat', key, error);
      }
    },

    async concatenate(targetKey: string, sources: Array<{ key: string; size: number }>): Promise<void> {
      const total = sources.reduce((sum, source) => sum + source.size, 0);
      if ((await this.size(targetKey)) === total) return;
      try {
        // S3 assembles parts server-side when every part but the last is at least 5 MiB: no byte
        // travels through this process. tus-js-client's parallel uploads split files evenly, so
        // that is the normal case.
        const parts = sources.filter((source) => source.size > 0);
        if (parts.length === 0) {
          await client.putObject({ Bucket, Key: targetKey, Body: '' });
          return;
        }
        if (parts.slice(0, -1).every((source) => source.size >= MIN_PART_SIZE)) {
          await copyParts(targetKey, parts);
          return;
        }
        // Small partials: stream them through into one object (bounded memory: a few parts).
        const body = Readable.from(
          (async function* () {
            for (const source of parts) {
              const { Body } = await client.getObject({ Bucket, Key: source.key });
              yield* Body as Readable;
            }
          })(),
        );
        await new Upload({ client, params: { Bucket, Key: targetKey, Body: body }, partSize: options.partSize, queueSize: 2 }).done();
      } catch (error) {
        throw unavailable('concatenate', targetKey, error);
      }
    },

    async move(fromKey: string, toKey: string): Promise<void> {
      const size = await this.size(fromKey);
      if (size === null) throw new ObjectNotFoundError(fromKey);
      try {
        await copy(fromKey, toKey, size);
        await client.deleteObjects({
          Bucket,
          Delete: { Objects: [fromKey, ...TUS_SUFFIXES.map((s) => fromKey + s)].map((Key) => ({ Key })) },
        });
      } catch (error) {
        throw unavailable('move', fromKey, error);
      }
    },

    async write(key: string, bytes: Uint8Array, contentType: string): Promise<void> {
      try {
        // One PUT: S3 makes the object visible only once it is whole.
        await client.putObject({ Bucket, Key: key, Body: bytes, ContentType: contentType });
      } catch (error) {
        throw unavailable('write', key, error);
      }
    },

    async remove(key: string): Promise<void> {
      try {
        // An unfinished upload also has a multipart upload to abort; tus knows its id, and a
        // direct-to-bucket upload's is found by its key.
        await tusStore.remove(key).catch(() => {});
        if (key.startsWith(DIRECT_PREFIX)) await abortMultipartUploadsAt(key);
        await client.deleteObjects({
          Bucket,
          Delete: { Objects: [key, ...TUS_SUFFIXES.map((s) => key + s)].map((Key) => ({ Key })) },
        });
      } catch (error) {
        if (isNotFound(error)) return;
        throw unavailable('remove', key, error);
      }
    },

    async *list(): AsyncIterable<StoredObject> {
      let ContinuationToken: string | undefined;
      // Keys come sorted, so an upload's object ("<id>") comes right before its "<id>.info".
      let previous: string | undefined;
      do {
        const page = await client.listObjectsV2({ Bucket, ContinuationToken });
        for (const object of page.Contents ?? []) {
          const key = object.Key;
          if (!key || key.endsWith('.part')) continue;
          const modifiedAt = object.LastModified ?? new Date(0);
          if (key.endsWith('.info')) {
            // An unfinished upload has only its info object (its bytes are in a multipart upload).
            const base = key.slice(0, -'.info'.length);
            if (base !== previous) yield { key: base, size: 0, modifiedAt };
            continue;
          }
          previous = key;
          yield { key, size: object.Size ?? 0, modifiedAt };
        }
        ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (ContinuationToken);
    },

    async ping(): Promise<void> {
      try {
        await client.headBucket({ Bucket });
      } catch (error) {
        throw new StorageUnavailableError(`S3 bucket ${Bucket} is not reachable: ${(error as Error)?.message ?? error}`, {
          cause: error,
        });
      }
    },
  };
}
