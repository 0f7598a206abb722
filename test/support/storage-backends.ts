// The two storage backends built exactly as the application builds them (loadConfig → createStorage,
// as src/start.ts does), on real components: a fresh directory under the OS temp dir, or a fresh
// bucket on the shared moto server. Each also exposes the raw names it holds (data objects and tus
// bookkeeping alike), so contract tests can check what an operation leaves behind.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { Upload, type DataStore } from '@tus/utils';
import { inject } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { connect } from '../../src/db/client.js';
import { migrateDatabase } from '../../src/db/migrate.js';
import { markUploadTerminated, tusInfoOf, uploadRecords } from '../../src/db/uploads.js';
import { createLogger } from '../../src/logger.js';
import { createStorage } from '../../src/storage/index.js';
import type { TusInfoLookup } from '../../src/storage/tus-info.js';
import type { ObjectStorage } from '../../src/storage/types.js';
import { createTestDatabase } from './database.js';
import { createBucket, s3Client } from './moto.js';

export const MiB = 2 ** 20;
/** The smallest part size the configuration accepts (and S3 allows): keeps S3 tests small. */
export const S3_TEST_PART_SIZE = 5 * MiB;

export interface StorageBackend {
  kind: 'file' | 's3';
  storage: ObjectStorage;
  /** Every name the backend holds (data and bookkeeping: `.json`, `.info`, `.part`), sorted. */
  rawKeys(): Promise<string[]>;
  /** Keys of multipart uploads still open (S3); always empty on disk. */
  openUploads(): Promise<string[]>;
  close(): Promise<void>;
}

export interface S3Backend extends StorageBackend {
  kind: 's3';
  bucket: string;
  /** moto itself (not a proxy the storage may have been pointed at). */
  motoEndpoint: string;
  client: S3Client;
}

export async function fileBackend(options: { tusInfo?: TusInfoLookup } = {}): Promise<StorageBackend> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tusvault-contract-'));
  const config = loadConfig({ STORAGE: 'file', DATA_DIR: dataDir });
  const storage = await createStorage(config, options);
  await storage.ping();
  const root = config.fileStorageDir;
  return {
    kind: 'file',
    storage,
    async rawKeys() {
      const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
      return entries
        .filter((entry) => entry.isFile())
        .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
        .sort();
    },
    async openUploads() {
      return [];
    },
    async close() {
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Disk storage as the server composes it: an upload's tus info comes from its record. The record
 * is made before the store creates the upload and marked terminated before the store removes it,
 * as the upload endpoint's lifecycle does (hooks/on-upload-create.ts, markUploadTerminated).
 */
export async function recordedFileBackend(): Promise<StorageBackend> {
  const testDb = await createTestDatabase('tvstore');
  const database = connect(testDb.url, { max: 2 });
  await migrateDatabase(database.sql, testDb.url, createLogger('error'));
  const files = await fileBackend({ tusInfo: (id) => tusInfoOf(database.db, id) });
  const records = uploadRecords(database.db, { quota: loadConfig({}).quota, maxAttempts: 3 });
  const owner = 'store-contract';
  const inner = files.storage.tusStore;
  const tusStore = Object.assign(Object.create(inner) as DataStore, {
    async create(upload: Upload) {
      const metadata = upload.metadata ?? {};
      await records.create({ id: upload.id, ownerId: owner, filename: 'contract.bin', mimeType: null, kind: 'other', size: upload.size ?? null, tusMetadata: metadata, expiresAt: null });
      return inner.create(upload);
    },
    async remove(id: string) {
      await markUploadTerminated(database.db, id, owner);
      return inner.remove(id);
    },
  });
  return {
    ...files,
    storage: Object.assign(Object.create(files.storage) as ObjectStorage, { tusStore }),
    async close() {
      await files.close();
      await database.close();
      await testDb.drop();
    },
  };
}

/** A fresh bucket; `endpoint` lets the storage talk through a proxy (fault injection) instead of moto directly. */
export async function s3Backend(options: { endpoint?: string; bucket?: string } = {}): Promise<S3Backend> {
  const motoEndpoint = inject('s3Endpoint');
  const bucket = options.bucket ?? `contract-${randomBytes(5).toString('hex')}`;
  if (!options.bucket) await createBucket(motoEndpoint, bucket);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tusvault-contract-s3-'));
  const config = loadConfig({
    STORAGE: 's3',
    DATA_DIR: dataDir,
    S3_BUCKET: bucket,
    S3_ENDPOINT: options.endpoint ?? motoEndpoint,
    S3_REGION: 'us-east-1',
    S3_ACCESS_KEY_ID: 'test',
    S3_SECRET_ACCESS_KEY: 'test',
    S3_FORCE_PATH_STYLE: 'true',
    S3_PART_SIZE: String(S3_TEST_PART_SIZE),
  });
  const storage = await createStorage(config);
  const client = s3Client(motoEndpoint);
  return {
    kind: 's3',
    storage,
    bucket,
    motoEndpoint,
    client,
    async rawKeys() {
      const keys: string[] = [];
      let ContinuationToken: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken }));
        for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
        ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (ContinuationToken);
      return keys.sort();
    },
    async openUploads() {
      const { Uploads } = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return (Uploads ?? []).map((upload) => upload.Key ?? '').sort();
    },
    async close() {
      client.destroy();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function uniqueKey(): string {
  return randomBytes(16).toString('hex');
}

/** Stores `data` under `key` the way the application does: a tus upload, written and completed. */
export async function putObject(storage: ObjectStorage, key: string, data: Buffer): Promise<void> {
  await storage.tusStore.create(new Upload({ id: key, size: data.length, offset: 0, metadata: {} }));
  if (data.length > 0) await storage.tusStore.write(Readable.from([data]), key, 0);
  await storage.completeUpload(key);
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * A request body that breaks off: sends `bytes` in 64 KiB chunks, waits until the store has taken
 * all of them in, then fails with an error (`'error'`) or is destroyed without one (`'abort'`, a
 * client gone: the store sees a premature close).
 */
export function brokenBody(bytes: Buffer, how: 'error' | 'abort', pauseMs = 300): Readable {
  let at = 0;
  let broken = false;
  const body = new Readable({
    highWaterMark: 64 * 1024,
    read() {
      if (at < bytes.length) {
        const chunk = bytes.subarray(at, at + 64 * 1024);
        at += chunk.length;
        this.push(chunk);
        return;
      }
      if (broken) return;
      broken = true;
      setTimeout(() => {
        if (how === 'error') body.destroy(new Error('the client connection broke'));
        else body.destroy();
      }, pauseMs);
    },
  });
  return body;
}

/** A request body that sends nothing and fails `afterMs` after it is made, whether read or not. */
export function goneBody(how: 'error' | 'abort', afterMs: number): Readable {
  const body = new Readable({ read() {} });
  setTimeout(() => {
    if (how === 'error') body.destroy(new Error('the client went away'));
    else body.destroy();
  }, afterMs);
  return body;
}
