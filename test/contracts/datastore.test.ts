// The DataStore contract (datastore.contract.ts) on both backends as the application builds them
// (disk storage also as the server composes it, its tus info from records),
// plus what only S3 has: the incomplete trailing part (`<id>.part`) and a multipart upload whose
// completion can be cut off. Crashes are reproduced by failing the S3 request at that point (a
// proxy in front of moto): the bucket is left exactly as a process killed there would leave it.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@tus/utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isCompleteMultipart,
  isIncompletePartKey,
  isUploadPart,
  s3FaultProxy,
  type S3FaultProxy,
} from '../support/s3-fault-proxy.js';
import {
  fileBackend,
  MiB,
  recordedFileBackend,
  readAll,
  s3Backend,
  S3_TEST_PART_SIZE,
  uniqueKey,
  type S3Backend,
} from '../support/storage-backends.js';
import { dataStoreContract } from './datastore.contract.js';

// First write below a part (S3 keeps it as `<id>.part`), then one that would fill one part and
// a bit: an interruption after it shows which bytes each backend keeps.
const breakSizes = { first: MiB, sent: S3_TEST_PART_SIZE + MiB / 2 };

dataStoreContract('file', async () => ({
  ...(await fileBackend()),
  breakSizes,
  // Every byte that reached the file counts (the sink writes what arrived before it closes).
  offsetAfterBreak: (acknowledged, sent) => acknowledged + sent,
}));

// As the server composes it: the tus info of an upload comes from its record (src/storage/tus-info.ts).
dataStoreContract('file, tus info from records', async () => ({
  ...(await recordedFileBackend()),
  breakSizes,
  offsetAfterBreak: (acknowledged, sent) => acknowledged + sent,
}));

dataStoreContract('s3', async () => ({
  ...(await s3Backend()),
  breakSizes,
  // Whole parts uploaded count; the bytes of an unfinished part are dropped. If no part was
  // uploaded, the `.part` from before (acknowledged bytes) stays.
  offsetAfterBreak: (acknowledged, sent) => {
    const inParts = Math.floor(acknowledged / S3_TEST_PART_SIZE) * S3_TEST_PART_SIZE;
    const chunks = Math.floor((acknowledged - inParts + sent) / S3_TEST_PART_SIZE);
    return chunks > 0 ? inParts + chunks * S3_TEST_PART_SIZE : acknowledged;
  },
}));

describe('S3 store: incomplete parts and interrupted completion', () => {
  let proxy: S3FaultProxy;
  let backend: S3Backend;

  beforeAll(async () => {
    const direct = await s3Backend();
    await direct.close();
    proxy = await s3FaultProxy(direct.motoEndpoint);
    backend = await s3Backend({ endpoint: proxy.url, bucket: direct.bucket });
  });
  afterAll(async () => {
    await backend?.close();
    await proxy?.close();
  });

  const store = () => backend.storage.tusStore;

  async function create(size: number): Promise<string> {
    const id = uniqueKey();
    await store().create(new Upload({ id, size, offset: 0, metadata: {} }));
    return id;
  }

  async function headPart(id: string) {
    return backend.client.send(new HeadObjectCommand({ Bucket: backend.bucket, Key: `${id}.part` })).catch(() => null);
  }

  it('keeps a small write as <id>.part, marked with the part its bytes will begin', async () => {
    const id = await create(8 * MiB);
    expect(await store().write(Readable.from([randomBytes(2 * MiB)]), id, 0)).toBe(2 * MiB);
    const part = await headPart(id);
    expect(part).toMatchObject({ ContentLength: 2 * MiB, Metadata: { 'tus-part-before': '1' } });
    expect(await backend.openUploads()).toContain(id);
    expect((await store().getUpload(id)).offset).toBe(2 * MiB);
  });

  it('a crash between uploading a part and deleting the .part it took bytes from counts them once', async () => {
    const data = randomBytes(8 * MiB);
    const id = await create(data.length);
    expect(await store().write(Readable.from([data.subarray(0, 2 * MiB)]), id, 0)).toBe(2 * MiB);

    // 3 MiB more fills part 1 (2 + 3 MiB); the old .part's DELETE never happens.
    proxy.fail((req) => req.method === 'DELETE' && isIncompletePartKey(req));
    try {
      expect(await store().write(Readable.from([data.subarray(2 * MiB, 5 * MiB)]), id, 2 * MiB)).toBe(5 * MiB);
    } finally {
      proxy.fail(null);
    }
    expect((await headPart(id))?.ContentLength).toBe(2 * MiB); // the stale .part is still there
    expect((await store().getUpload(id)).offset).toBe(5 * MiB); // but counts for nothing: not 7 MiB

    // The next write drops the stale .part instead of prepending its bytes a second time.
    expect(await store().write(Readable.from([data.subarray(5 * MiB, 6 * MiB)]), id, 5 * MiB)).toBe(6 * MiB);
    expect(await headPart(id)).toMatchObject({ ContentLength: MiB, Metadata: { 'tus-part-before': '2' } });
    expect((await store().getUpload(id)).offset).toBe(6 * MiB);

    expect(await store().write(Readable.from([data.subarray(6 * MiB)]), id, 6 * MiB)).toBe(data.length);
    expect((await readAll(await backend.storage.read(id))).equals(data)).toBe(true);
    expect(await headPart(id)).toBeNull();
  });

  it('keeps the acknowledged .part when S3 refuses the part it was to go into', async () => {
    const data = randomBytes(7 * MiB);
    const id = await create(data.length);
    expect(await store().write(Readable.from([data.subarray(0, MiB)]), id, 0)).toBe(MiB);

    proxy.fail(isUploadPart);
    try {
      await expect(store().write(Readable.from([data.subarray(MiB, 6 * MiB)]), id, MiB)).rejects.toMatchObject({
        name: 'StorageUnavailableError',
      });
    } finally {
      proxy.fail(null);
    }
    // @tus/s3-store alone had deleted the .part before the part failed: offset 0, 1 MiB lost.
    expect((await store().getUpload(id)).offset).toBe(MiB);
    expect((await headPart(id))?.ContentLength).toBe(MiB);

    expect(await store().write(Readable.from([data.subarray(MiB)]), id, MiB)).toBe(data.length);
    expect((await readAll(await backend.storage.read(id))).equals(data)).toBe(true);
  });

  it('a crash before the multipart upload is completed: every byte is counted, completeUpload finishes it', async () => {
    const data = randomBytes(6 * MiB);
    const id = await create(data.length);
    proxy.fail(isCompleteMultipart);
    try {
      await expect(store().write(Readable.from([data]), id, 0)).rejects.toBeDefined();
    } finally {
      proxy.fail(null);
    }
    // All parts arrived: HEAD reports the upload as complete, but there is no object yet.
    expect(await store().getUpload(id)).toMatchObject({ offset: data.length, size: data.length });
    expect(await backend.storage.size(id)).toBeNull();

    await backend.storage.completeUpload(id);
    expect(await backend.storage.size(id)).toBe(data.length);
    expect((await readAll(await backend.storage.read(id))).equals(data)).toBe(true);
    // Idempotent: completing again changes nothing.
    await backend.storage.completeUpload(id);
    expect(await backend.storage.size(id)).toBe(data.length);
  });

  it('completeUpload leaves an upload whose bytes have not all arrived unfinished', async () => {
    const id = await create(3 * MiB);
    expect(await store().write(Readable.from([randomBytes(MiB)]), id, 0)).toBe(MiB);
    await backend.storage.completeUpload(id);
    expect(await backend.storage.size(id)).toBeNull();
    expect(await store().getUpload(id)).toMatchObject({ offset: MiB, size: 3 * MiB });
  });

  it('an S3 outage on getUpload is StorageUnavailableError (503), never FILE_NOT_FOUND', async () => {
    const id = await create(MiB);
    proxy.fail(() => true);
    try {
      await expect(store().getUpload(id)).rejects.toMatchObject({ name: 'StorageUnavailableError' });
    } finally {
      proxy.fail(null);
    }
    expect((await store().getUpload(id)).offset).toBe(0);
  });
});
