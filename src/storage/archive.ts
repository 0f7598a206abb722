// Local-disk storage with an archive bucket (STORAGE=file + ARCHIVE_S3_*): blobs the tier sweep
// archives are copied to the bucket in the archive storage class, checked there against the
// sha256 we know, and only then deleted from disk. Reads go to the disk and, for a key no longer
// there, to the bucket (a restored copy, streamed, ranges included). The orphan sweep lists both.
// Everything else is the disk's.
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { S3, type StorageClass } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { parseRestoreHeader, readObject, s3ClientConfig, unavailable } from './s3.js';
import {
  ObjectNotFoundError,
  PREVIEW_PREFIX,
  QUARANTINE_PREFIX,
  type ByteRange,
  type ObjectClass,
  type ObjectStorage,
  type StorageClasses,
  type StoredObject,
} from './types.js';

export interface ArchiveBucketOptions {
  bucket: string;
  endpoint?: string | undefined;
  region: string;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  forcePathStyle: boolean;
}

/** S3's limit for one PutObject; larger blobs go up in parts. */
const MAX_SINGLE_PUT = 5 * 2 ** 30;
const UPLOAD_PART_SIZE = 64 * 2 ** 20;
const ARCHIVE_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE']);

/** The copy in the bucket is not the content it should be (or could not be checked). */
export class ArchiveVerificationError extends Error {
  constructor(key: string, reason: string) {
    super(`the archived copy of ${key} does not match: ${reason}; the local file is kept`);
    this.name = 'ArchiveVerificationError';
  }
}

const base64Of = (sha256Hex: string) => Buffer.from(sha256Hex, 'hex').toString('base64');

/** A pass-through that hashes what goes to the bucket. */
function hashing(): Transform & { digest(): string } {
  const hash = createHash('sha256');
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  return Object.assign(stream, { digest: () => hash.digest('hex') });
}

export function createArchivingStorage(local: ObjectStorage, options: ArchiveBucketOptions): ObjectStorage {
  const client = new S3(s3ClientConfig(options));
  const Bucket = options.bucket;
  // Only blobs are archived: uploads in progress, quarantine and previews stay local.
  const archivable = (key: string) => !key.startsWith(QUARANTINE_PREFIX) && !key.startsWith(PREVIEW_PREFIX);

  async function head(key: string) {
    try {
      return await client.headObject({ Bucket, Key: key, ChecksumMode: 'ENABLED' });
    } catch (error) {
      const e = unavailable('stat', key, error);
      if (e instanceof ObjectNotFoundError) return null;
      throw e;
    }
  }

  /** Why the bucket's copy is not `content`, or null when it is. */
  function mismatch(copy: NonNullable<Awaited<ReturnType<typeof head>>>, content: { sha256: string; size: number }): string | null {
    if (copy.ContentLength !== content.size) return `${copy.ContentLength} bytes, expected ${content.size}`;
    const checksum = copy.ChecksumSHA256;
    // A multipart copy has a checksum of its parts' checksums ("…-N"): S3 checked each part on
    // arrival and the bytes sent were hashed on the way (upload()).
    if (checksum && !checksum.includes('-') && checksum !== base64Of(content.sha256)) return `sha256 ${checksum}, expected ${base64Of(content.sha256)}`;
    if (!checksum) return 'the bucket reports no SHA-256 checksum';
    return null;
  }

  /** Streams the local file into the bucket in `storageClass`; S3 computes and keeps its SHA-256. */
  async function upload(key: string, size: number, storageClass: string, sha256: string): Promise<void> {
    const sent = hashing();
    const source = await local.read(key, undefined, size);
    source.on('error', (error) => sent.destroy(error));
    const body = source.pipe(sent);
    const StorageClass = storageClass as StorageClass;
    try {
      if (size <= MAX_SINGLE_PUT) {
        await client.putObject({ Bucket, Key: key, Body: body, ContentLength: size, StorageClass, ChecksumAlgorithm: 'SHA256' });
      } else {
        await new Upload({
          client,
          params: { Bucket, Key: key, Body: body, StorageClass, ChecksumAlgorithm: 'SHA256' },
          partSize: UPLOAD_PART_SIZE,
          queueSize: 2,
        }).done();
      }
    } catch (error) {
      throw unavailable('archive', key, error);
    }
    const digest = sent.digest();
    if (digest !== sha256) {
      // Not worth an archive class's minimum storage charge; a retry uploads again anyway.
      await client.deleteObject({ Bucket, Key: key }).catch(() => {});
      // The local file is not the content its record names: keep it and leave the decision to a person.
      throw new ArchiveVerificationError(key, `the local file's sha256 is ${digest}, the record's ${sha256}`);
    }
  }

  const classes: StorageClasses = {
    archiveOnly: true,

    async inspect(key: string): Promise<ObjectClass | null> {
      const copy = await head(key);
      if (copy) return { storageClass: copy.StorageClass ?? 'STANDARD', restore: parseRestoreHeader(copy.Restore) };
      return (await local.size(key)) === null ? null : { storageClass: 'STANDARD', restore: null };
    },

    /**
     * Copies the local file to the bucket (unless a copy with this content and class is there
     * already: a sweep that stopped after the copy), checks the copy, then deletes the local file.
     */
    async changeClass(key: string, storageClass: string, content: { sha256: string; size: number }): Promise<void> {
      if (!ARCHIVE_CLASSES.has(storageClass)) throw new Error(`local storage has no ${storageClass} class, only archive classes`);
      let copy = await head(key);
      if (!copy || copy.StorageClass !== storageClass || mismatch(copy, content) !== null) {
        if ((await local.size(key)) === null) {
          throw copy ? new ArchiveVerificationError(key, mismatch(copy, content) ?? `it is in ${copy.StorageClass}`) : new ObjectNotFoundError(key);
        }
        await upload(key, content.size, storageClass, content.sha256);
        copy = await head(key);
        if (!copy) throw new ArchiveVerificationError(key, 'the bucket does not have it after the upload');
        const reason = mismatch(copy, content);
        if (reason) throw new ArchiveVerificationError(key, reason);
      }
      await local.remove(key);
    },

    async restore(key: string, days: number): Promise<'started' | 'ongoing' | 'restored'> {
      try {
        const answer = await client.restoreObject({ Bucket, Key: key, RestoreRequest: { Days: days } });
        return answer.$metadata.httpStatusCode === 200 ? 'restored' : 'started';
      } catch (error) {
        if ((error as { name?: string })?.name === 'RestoreAlreadyInProgress') return 'ongoing';
        throw unavailable('restore', key, error);
      }
    },
  };

  return {
    ...local,
    classes,
    // The disk's own (its size check of the target is the disk's, not this object's).
    concatenate: (targetKey, sources) => local.concatenate(targetKey, sources),

    async read(key: string, range?: ByteRange, expectedSize?: number | null): Promise<Readable> {
      try {
        return await local.read(key, range, expectedSize);
      } catch (error) {
        if (!(error instanceof ObjectNotFoundError) || !archivable(key)) throw error;
      }
      return readObject(client, Bucket, key, range);
    },

    async size(key: string): Promise<number | null> {
      const size = await local.size(key);
      if (size !== null || !archivable(key)) return size;
      return (await head(key))?.ContentLength ?? null;
    },

    /**
     * The disk's objects, then the bucket's that are not on disk too: an archived copy whose blob
     * is gone (a crash between the record's removal and the copy's) is an orphan like any other.
     */
    async *list(): AsyncIterable<StoredObject> {
      yield* local.list();
      let ContinuationToken: string | undefined;
      do {
        let page;
        try {
          page = await client.listObjectsV2({ Bucket, ContinuationToken });
        } catch (error) {
          throw unavailable('list', Bucket, error);
        }
        for (const object of page.Contents ?? []) {
          // A key on disk as well was listed with the disk's (a move between copy and local delete).
          if (!object.Key || !archivable(object.Key) || (await local.size(object.Key)) !== null) continue;
          yield { key: object.Key, size: object.Size ?? 0, modifiedAt: object.LastModified ?? new Date(0) };
        }
        ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (ContinuationToken);
    },

    async remove(key: string): Promise<void> {
      // A bucket key the disk cannot name (an orphan the sweep found there) has no local file.
      await local.remove(key).catch((error: unknown) => {
        if (!(error instanceof ObjectNotFoundError)) throw error;
      });
      if (!archivable(key)) return;
      try {
        await client.deleteObject({ Bucket, Key: key });
      } catch (error) {
        const e = unavailable('remove', key, error);
        if (!(e instanceof ObjectNotFoundError)) throw e;
      }
    },
  };
}
