// The storage seam: what the rest of the application may do with stored bytes, whatever the
// backend. It knows object keys and bytes, nothing of upload records or statuses.
import type { Readable } from 'node:stream';
import type { DataStore } from '@tus/utils';

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

export interface StoredObject {
  key: string;
  size: number;
  modifiedAt: Date;
}

/** A filesystem call failed because the file (or a directory on its path) does not exist. */
export function isMissingFile(error: unknown): boolean {
  return (error as NodeJS.ErrnoException)?.code === 'ENOENT';
}

export class ObjectNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`stored object ${key} does not exist`);
    this.name = 'ObjectNotFoundError';
  }
}

/** The storage backend is unreachable or failing (network, permissions, disk): worth a retry. */
export class StorageUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageUnavailableError';
  }
}

/** The object is in an archive storage class and has no restored copy to read (S3 InvalidObjectState). */
export class ObjectArchivedError extends Error {
  constructor(readonly key: string) {
    super(`stored object ${key} is archived; restore it first`);
    this.name = 'ObjectArchivedError';
  }
}

/** An object's storage class and the state of its restore (archive classes only). */
export interface ObjectClass {
  storageClass: string;
  /** null: no restore was asked for (or the restored copy expired). */
  restore: { ongoing: boolean; expiresAt: Date | null } | null;
}

/** Storage classes of a bucket (S3, R2): what the tier sweep and restores use. */
export interface StorageClasses {
  /**
   * Only archive classes (local disk with an archive bucket, src/storage/archive.ts): there is no
   * infrequent-access class to move to.
   */
  readonly archiveOnly?: boolean;
  /** The object's class and restore state, or null when it does not exist. */
  inspect(key: string): Promise<ObjectClass | null>;
  /**
   * Rewrites the object in place in another class (a server-side copy onto its own key: bytes,
   * type and metadata kept; the old version stays readable until the copy completes). `content`
   * is what the object holds: an archive bucket checks its copy against it before the local
   * file goes.
   */
  changeClass(key: string, storageClass: string, content: { sha256: string; size: number }): Promise<void>;
  /** Asks for a temporary readable copy of an archived object for `days`. */
  restore(key: string, days: number): Promise<'started' | 'ongoing' | 'restored'>;
}

export interface ObjectStorage {
  readonly backend: 'file' | 's3';
  /** Storage classes, where the backend has them (S3); absent for local files. */
  readonly classes?: StorageClasses;
  /** The @tus data store writing into this storage. */
  readonly tusStore: DataStore;
  /**
   * Makes sure a tus upload whose bytes have all arrived is a readable object (S3 completes a
   * multipart upload that a crash left open). A no-op where writes are in place.
   */
  completeUpload(key: string): Promise<void>;
  /**
   * Streams an object (or a byte range of it) without buffering it. `expectedSize` (the object's
   * length, when the caller knows it) lets the file store read a large object in 1 MiB chunks
   * instead of 64 KiB ones (a 1 GiB digest: 2.5 s → 2.1 s) without a 1 MiB buffer for a small one.
   */
  read(key: string, range?: ByteRange, expectedSize?: number | null): Promise<Readable>;
  /** The object's size, or null when it does not exist. */
  size(key: string): Promise<number | null>;
  /**
   * Writes the concatenation of `sources` (in order) as a new object at `targetKey` (tus
   * concatenation). Idempotent: a target that already has the full size is left as it is.
   */
  concatenate(targetKey: string, sources: Array<{ key: string; size: number }>): Promise<void>;
  /** Moves an object to a new key (quarantine); the old key is gone afterwards. */
  move(fromKey: string, toKey: string): Promise<void>;
  /** Writes a small object whole (a preview), replacing any at the key; readers never see half of it. */
  write(key: string, bytes: Uint8Array, contentType: string): Promise<void>;
  /** Removes an object, any tus bookkeeping beside it and an unfinished upload at its key; missing ones are fine. */
  remove(key: string): Promise<void>;
  /** Every stored data object (not tus bookkeeping), for the orphan sweep. */
  list(): AsyncIterable<StoredObject>;
  /** Throws when the backend is not reachable (readiness probe). */
  ping(): Promise<void>;
}

export const QUARANTINE_PREFIX = 'quarantine/';
/** Previews of a blob's content (thumbnails, light maps), beside the blobs: previews/<name>. */
export const PREVIEW_PREFIX = 'previews/';
/** Where browsers and apps upload straight to the bucket (presigned requests): direct/<owner>/<id>. */
export const DIRECT_PREFIX = 'direct/';
