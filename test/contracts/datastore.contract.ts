// The tus DataStore contract every storage backend's `storage.tusStore` must keep, as @tus/server
// (and our endpoint above it) relies on it. One suite, run against every backend (see
// datastore.test.ts), the way tus-node-server runs one store suite against all its stores.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Upload, type DataStore } from '@tus/utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectStorage } from '../../src/storage/types.js';
import { brokenBody, goneBody, readAll, uniqueKey, type StorageBackend } from '../support/storage-backends.js';

export interface DataStoreSubject extends StorageBackend {
  /**
   * The offset a store reports after a write that broke off after `sent` more bytes arrived, when
   * `acknowledged` bytes were stored before it. The file store keeps every byte that arrived; S3
   * keeps the whole parts it uploaded, or, when it uploaded none, the `.part` it already had.
   */
  offsetAfterBreak(acknowledged: number, sent: number): number;
  /** Sizes that make an interrupted write store something beyond what was acknowledged. */
  breakSizes: { first: number; sent: number };
}

const notFound = (error: unknown) => (error as { status_code?: number })?.status_code === 404;

async function stored(storage: ObjectStorage, key: string): Promise<Buffer> {
  await storage.completeUpload(key);
  return readAll(await storage.read(key));
}

export function dataStoreContract(name: string, setup: () => Promise<DataStoreSubject>): void {
  describe(`DataStore contract: ${name}`, () => {
    let subject: DataStoreSubject;
    let store: DataStore;

    beforeAll(async () => {
      subject = await setup();
      store = subject.storage.tusStore;
    });
    afterAll(async () => {
      await subject?.close();
    });

    async function create(size: number | undefined, metadata: Record<string, string | null> = {}): Promise<string> {
      const id = uniqueKey();
      const created = await store.create(new Upload({ id, size, offset: 0, metadata }));
      expect(created.id).toBe(id);
      return id;
    }

    it('offers the extensions @tus/server needs; concatenation and checksums are done above the store', () => {
      for (const extension of ['creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'expiration']) {
        expect(store.hasExtension(extension), extension).toBe(true);
      }
      // Final uploads are assembled by ObjectStorage.concatenate (tasks/concat-upload.ts), and
      // checksums are verified on the body before it reaches the store (src/tus/body.ts).
      expect(store.hasExtension('concatenation')).toBe(false);
      expect(store.hasExtension('checksum')).toBe(false);
    });

    it('creates an upload: offset 0, the declared size, metadata as given, a creation date', async () => {
      const metadata = { filename: 'Menü – show.fseq', filetype: 'application/octet-stream', empty: null };
      const id = await create(1234, metadata);
      const upload = await store.getUpload(id);
      expect(upload).toMatchObject({ id, offset: 0, size: 1234, metadata });
      expect(upload.sizeIsDeferred).toBe(false);
      expect(Number.isNaN(Date.parse(upload.creation_date!))).toBe(false);
    });

    it('reports an unknown upload as FILE_NOT_FOUND (404)', async () => {
      await expect(store.getUpload(uniqueKey())).rejects.toSatisfy(notFound);
    });

    it('writes at offsets: several writes accumulate, each returns the new offset, the last completes the object', async () => {
      const data = randomBytes(400_003);
      const id = await create(data.length);
      const cuts = [0, 100_000, 250_001, 250_001, data.length]; // one write is empty
      for (let i = 0; i + 1 < cuts.length; i++) {
        const [from, to] = [cuts[i]!, cuts[i + 1]!];
        const offset = await store.write(Readable.from(to > from ? [data.subarray(from, to)] : []), id, from);
        expect(offset).toBe(to);
        const upload = await store.getUpload(id);
        expect(upload.offset).toBe(to);
        expect(upload.size).toBe(data.length);
      }
      expect(await subject.storage.size(id)).toBe(data.length);
      expect((await stored(subject.storage, id)).equals(data)).toBe(true);
      // A finished upload still answers getUpload (HEAD after completion).
      expect(await store.getUpload(id)).toMatchObject({ offset: data.length, size: data.length });
    });

    it('writes a body that arrives in many small chunks byte-exact', async () => {
      const data = randomBytes(300_000);
      const id = await create(data.length);
      const chunks = Array.from({ length: Math.ceil(data.length / 4096) }, (_, i) => data.subarray(i * 4096, (i + 1) * 4096));
      expect(await store.write(Readable.from(chunks), id, 0)).toBe(data.length);
      expect((await stored(subject.storage, id)).equals(data)).toBe(true);
    });

    it('declares a deferred length: unknown size first, writes before and after the declaration', async () => {
      const data = randomBytes(200_000);
      const id = await create(undefined, { filename: 'later.bin' });
      expect(await store.getUpload(id)).toMatchObject({ offset: 0, size: undefined, sizeIsDeferred: true });

      expect(await store.write(Readable.from([data.subarray(0, 80_000)]), id, 0)).toBe(80_000);
      expect((await store.getUpload(id)).offset).toBe(80_000);

      await store.declareUploadLength(id, data.length);
      const declared = await store.getUpload(id);
      expect(declared).toMatchObject({ offset: 80_000, size: data.length, sizeIsDeferred: false, metadata: { filename: 'later.bin' } });

      expect(await store.write(Readable.from([data.subarray(80_000)]), id, 80_000)).toBe(data.length);
      expect(await store.getUpload(id)).toMatchObject({ offset: data.length, size: data.length });
      expect((await stored(subject.storage, id)).equals(data)).toBe(true);
    });

    it('declaring the length of an unknown upload is FILE_NOT_FOUND', async () => {
      await expect(store.declareUploadLength(uniqueKey(), 10)).rejects.toSatisfy(notFound);
    });

    it('removes an unfinished upload: getUpload is 404 afterwards and nothing of it stays behind', async () => {
      const id = await create(300_000);
      await store.write(Readable.from([randomBytes(120_000)]), id, 0);
      expect((await subject.rawKeys()).some((key) => key.startsWith(id))).toBe(true);

      await store.remove(id);
      await expect(store.getUpload(id)).rejects.toSatisfy(notFound);
      expect((await subject.rawKeys()).filter((key) => key.startsWith(id))).toEqual([]);
      expect(await subject.openUploads()).not.toContain(id);
    });

    it('removing an unknown upload is FILE_NOT_FOUND', async () => {
      await expect(store.remove(uniqueKey())).rejects.toSatisfy(notFound);
    });

    it('has no expiry of its own (uploads expire from the database): deleteExpired removes nothing', async () => {
      expect(store.getExpiration()).toBe(0);
      const id = await create(100_000);
      await store.write(Readable.from([randomBytes(10_000)]), id, 0);
      expect(await store.deleteExpired()).toBe(0);
      expect((await store.getUpload(id)).offset).toBe(10_000);
    });

    it('holds partial uploads that ObjectStorage.concatenate assembles into the final object, in order', async () => {
      const parts = [randomBytes(70_000), randomBytes(0), randomBytes(33_333)];
      const sources: Array<{ key: string; size: number }> = [];
      for (const part of parts) {
        const id = await create(part.length);
        if (part.length > 0) expect(await store.write(Readable.from([part]), id, 0)).toBe(part.length);
        // tasks/concat-upload.ts: a partial is complete when offset === size.
        expect(await store.getUpload(id)).toMatchObject({ offset: part.length, size: part.length });
        await subject.storage.completeUpload(id);
        sources.push({ key: id, size: part.length });
      }
      const finalKey = uniqueKey();
      await subject.storage.concatenate(finalKey, sources);
      expect((await readAll(await subject.storage.read(finalKey))).equals(Buffer.concat(parts))).toBe(true);
      expect(await subject.storage.size(finalKey)).toBe(103_333);
    });

    for (const how of ['error', 'abort'] as const) {
      it(`a write whose body breaks off (${how}) keeps what was acknowledged, and the offset is what is stored`, async () => {
        const { first, sent } = subject.breakSizes;
        const data = randomBytes(first + sent + 4096);
        const id = await create(data.length);
        // An acknowledged first write.
        expect(await store.write(Readable.from([data.subarray(0, first)]), id, 0)).toBe(first);

        await expect(store.write(brokenBody(data.subarray(first, first + sent), how), id, first)).rejects.toBeDefined();
        const offset = (await store.getUpload(id)).offset;
        expect(offset).toBe(subject.offsetAfterBreak(first, sent));
        expect(offset).toBeGreaterThanOrEqual(first);

        // The client resumes from the offset the store reports: the result is byte-identical,
        // so what the store kept was exactly the bytes before that offset.
        expect(await store.write(Readable.from([data.subarray(offset)]), id, offset)).toBe(data.length);
        expect((await stored(subject.storage, id)).equals(data)).toBe(true);
      });
    }

    for (const how of ['error', 'abort'] as const) {
      it(`a body that fails (${how}) before the store reads it fails the write, the upload stays as it was`, async () => {
        const data = randomBytes(50_000);
        const id = await create(data.length);
        expect(await store.write(Readable.from([data.subarray(0, 20_000)]), id, 0)).toBe(20_000);
        // The client goes away while the store is still looking up the upload (S3: several
        // requests before it reads the body, and a `.part` to put in front of it).
        await expect(store.write(goneBody(how, 1), id, 20_000)).rejects.toBeDefined();
        expect((await store.getUpload(id)).offset).toBe(20_000);
        expect(await store.write(Readable.from([data.subarray(20_000)]), id, 20_000)).toBe(data.length);
        expect((await stored(subject.storage, id)).equals(data)).toBe(true);
      });
    }

    it('a zero-length upload is complete at once and, once completed, a readable empty object', async () => {
      const id = await create(0);
      expect(await store.getUpload(id)).toMatchObject({ offset: 0, size: 0 });
      await subject.storage.completeUpload(id);
      expect(await subject.storage.size(id)).toBe(0);
      expect((await readAll(await subject.storage.read(id))).length).toBe(0);
    });

    it('rejects an id that could leave the store (path traversal) as not found', async () => {
      await expect(store.getUpload('../../etc/passwd')).rejects.toSatisfy(notFound);
    });
  });
}
