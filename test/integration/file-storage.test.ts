// Local-disk storage reads on a real filesystem: whole objects and ranges come back byte-exact,
// a large object is read in 1 MiB chunks when its size is known (fewer thread-pool round trips
// for a digest or a scan), and a missing or hostile key is ObjectNotFoundError. Uploads are created
// in a storage directory removed since the start.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ERRORS, Upload } from '@tus/utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFileStorage } from '../../src/storage/file.js';
import { ObjectNotFoundError, type ObjectStorage } from '../../src/storage/types.js';

const MiB = 1024 * 1024;

async function chunksOf(stream: Readable): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return chunks;
}

describe('file storage reads', () => {
  let dir: string;
  let storage: ObjectStorage;
  const large = randomBytes(3 * MiB + 123);
  const small = randomBytes(10_000);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tusvault-file-storage-'));
    storage = createFileStorage(dir, { expirationMs: 0 });
    await writeFile(path.join(dir, 'large'), large);
    await writeFile(path.join(dir, 'small'), small);
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads a large object of known size in 1 MiB chunks, and in 64 KiB ones when the size is not given', async () => {
    const sized = await chunksOf(await storage.read('large', undefined, large.length));
    expect(Buffer.concat(sized).equals(large)).toBe(true);
    expect(Math.max(...sized.map((c) => c.length))).toBe(MiB);
    expect(sized).toHaveLength(4);

    const unsized = await chunksOf(await storage.read('large'));
    expect(Buffer.concat(unsized).equals(large)).toBe(true);
    expect(Math.max(...unsized.map((c) => c.length))).toBe(64 * 1024);
  });

  it('reads a small object in one chunk, and a range exactly (in chunks sized to the range)', async () => {
    const [only, ...rest] = await chunksOf(await storage.read('small', undefined, small.length));
    expect(rest).toEqual([]);
    expect(only!.equals(small)).toBe(true);

    const range = await chunksOf(await storage.read('large', { start: MiB - 10, end: 2 * MiB + 9 }));
    expect(Buffer.concat(range).equals(large.subarray(MiB - 10, 2 * MiB + 10))).toBe(true);
    expect(Math.max(...range.map((c) => c.length))).toBe(MiB);
  });

  it('reports a missing object and a key outside the store as not found', async () => {
    await expect(storage.read('missing')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(storage.read('../etc/passwd')).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('creates an upload in a storage directory removed since the start (made again), and refuses an id that is not a key', async () => {
    const gone = await mkdtemp(path.join(tmpdir(), 'tusvault-file-storage-gone-'));
    const store = createFileStorage(gone, { expirationMs: 0 }).tusStore;
    await rm(gone, { recursive: true });
    await store.create(new Upload({ id: 'again', size: 3, offset: 0, metadata: {} }));
    expect(await store.write(Readable.from([Buffer.from('abc')]), 'again', 0)).toBe(3);
    expect((await store.getUpload('again')).offset).toBe(3);
    expect(await readFile(path.join(gone, 'again'), 'utf8')).toBe('abc');
    await expect(store.create(new Upload({ id: '../outside', size: 1, offset: 0 }))).rejects.toBe(ERRORS.FILE_NOT_FOUND);
    await rm(gone, { recursive: true, force: true });
  });
});
