// The ObjectStorage contract (src/storage/types.ts): every method, the same promises on every
// backend. Objects are stored the way the application stores them: as tus uploads through
// `storage.tusStore`, completed with `completeUpload`.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Upload } from '@tus/utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ObjectNotFoundError,
  PREVIEW_PREFIX,
  QUARANTINE_PREFIX,
  StorageUnavailableError,
  type ObjectStorage,
  type StoredObject,
} from '../../src/storage/types.js';
import { MiB, putObject, readAll, uniqueKey, type StorageBackend } from '../support/storage-backends.js';

export interface ObjectStorageSubject extends StorageBackend {
  /** The same backend, configured so that it cannot be reached (for ping). */
  unreachable(): Promise<ObjectStorage>;
}

async function listAll(storage: ObjectStorage): Promise<StoredObject[]> {
  const objects: StoredObject[] = [];
  for await (const object of storage.list()) objects.push(object);
  return objects;
}

export function objectStorageContract(name: string, setup: () => Promise<ObjectStorageSubject>): void {
  describe(`ObjectStorage contract: ${name}`, () => {
    let subject: ObjectStorageSubject;
    let storage: ObjectStorage;
    const data = randomBytes(300_001);
    let key: string;
    let empty: string;

    beforeAll(async () => {
      subject = await setup();
      storage = subject.storage;
      key = uniqueKey();
      empty = uniqueKey();
      await putObject(storage, key, data);
      await putObject(storage, empty, Buffer.alloc(0));
    });
    afterAll(async () => {
      await subject?.close();
    });

    it('names its backend and exposes the tus store writing into it', () => {
      expect(storage.backend).toBe(name);
      expect(typeof storage.tusStore.write).toBe('function');
    });

    describe('read', () => {
      it('streams a whole object, with or without its expected size', async () => {
        expect((await readAll(await storage.read(key))).equals(data)).toBe(true);
        expect((await readAll(await storage.read(key, undefined, data.length))).equals(data)).toBe(true);
      });

      it('reads inclusive byte ranges: inside, from the start, the last byte, the whole object', async () => {
        const cases = [
          { start: 1000, end: 250_000 },
          { start: 0, end: 0 },
          { start: 0, end: 99 },
          { start: data.length - 1, end: data.length - 1 },
          { start: data.length - 10, end: data.length - 1 },
          { start: 0, end: data.length - 1 },
        ];
        for (const range of cases) {
          const got = await readAll(await storage.read(key, range));
          expect(got.equals(data.subarray(range.start, range.end + 1)), JSON.stringify(range)).toBe(true);
        }
      });

      it('a range whose end lies past the object stops at its last byte', async () => {
        const got = await readAll(await storage.read(key, { start: data.length - 5, end: data.length + 1000 }));
        expect(got.equals(data.subarray(data.length - 5))).toBe(true);
      });

      it('reads a zero-length object as no bytes', async () => {
        expect((await readAll(await storage.read(empty))).length).toBe(0);
        expect((await readAll(await storage.read(empty, undefined, 0))).length).toBe(0);
      });

      it('a missing key is ObjectNotFoundError from the call itself, not from the stream', async () => {
        const missing = uniqueKey();
        const error = await storage.read(missing).then(
          () => null,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(ObjectNotFoundError);
        expect((error as ObjectNotFoundError).key).toBe(missing);
        await expect(storage.read(missing, { start: 0, end: 10 })).rejects.toBeInstanceOf(ObjectNotFoundError);
      });

      it('an unfinished upload is not readable as an object beyond what it holds', async () => {
        const id = uniqueKey();
        await storage.tusStore.create(new Upload({ id, size: 100_000, offset: 0, metadata: {} }));
        await storage.tusStore.write(Readable.from([data.subarray(0, 40_000)]), id, 0);
        // Disk holds the bytes so far; S3 has no object until the multipart upload completes.
        const size = await storage.size(id);
        expect(size === null || size === 40_000).toBe(true);
        if (size === null) await expect(storage.read(id)).rejects.toBeInstanceOf(ObjectNotFoundError);
        else expect((await readAll(await storage.read(id))).equals(data.subarray(0, 40_000))).toBe(true);
        await storage.remove(id);
      });
    });

    describe('size', () => {
      it('is the byte count of an object, 0 for an empty one, null for a missing key', async () => {
        expect(await storage.size(key)).toBe(data.length);
        expect(await storage.size(empty)).toBe(0);
        expect(await storage.size(uniqueKey())).toBeNull();
      });

      it('is null for a key outside the storage rules (never an error, never another file)', async () => {
        expect(await storage.size('../../etc/passwd')).toBeNull();
      });
    });

    describe('completeUpload', () => {
      it('makes a finished upload a readable object, and is a no-op for objects and missing keys', async () => {
        const id = uniqueKey();
        const bytes = randomBytes(70_000);
        await storage.tusStore.create(new Upload({ id, size: bytes.length, offset: 0, metadata: {} }));
        await storage.tusStore.write(Readable.from([bytes]), id, 0);
        await storage.completeUpload(id);
        expect((await readAll(await storage.read(id))).equals(bytes)).toBe(true);
        await storage.completeUpload(id); // again: nothing changes
        expect(await storage.size(id)).toBe(bytes.length);
        await storage.completeUpload(uniqueKey());
        const assembled = uniqueKey();
        await storage.concatenate(assembled, [{ key, size: data.length }]);
        await storage.completeUpload(assembled); // an object we wrote ourselves, no tus info
        expect(await storage.size(assembled)).toBe(data.length);
      });

      it('makes an empty upload (never written) a zero-length object', async () => {
        const id = uniqueKey();
        await storage.tusStore.create(new Upload({ id, size: 0, offset: 0, metadata: {} }));
        await storage.completeUpload(id);
        expect(await storage.size(id)).toBe(0);
      });
    });

    describe('concatenate', () => {
      it('writes the sources in order as one object; empty sources add nothing', async () => {
        const a = randomBytes(10_000);
        const b = randomBytes(123_457);
        const [ka, kb] = [uniqueKey(), uniqueKey()];
        await putObject(storage, ka, a);
        await putObject(storage, kb, b);
        const target = uniqueKey();
        await storage.concatenate(target, [
          { key: kb, size: b.length },
          { key: empty, size: 0 },
          { key: ka, size: a.length },
        ]);
        expect((await readAll(await storage.read(target))).equals(Buffer.concat([b, a]))).toBe(true);
        // The sources are still there (a client MAY reuse partials).
        expect(await storage.size(ka)).toBe(a.length);
      });

      it('assembles sources of a full part or more (S3: server-side part copies)', async () => {
        const big = randomBytes(5 * MiB + 17);
        const tail = randomBytes(1000);
        const [kBig, kTail] = [uniqueKey(), uniqueKey()];
        await putObject(storage, kBig, big);
        await putObject(storage, kTail, tail);
        const target = uniqueKey();
        await storage.concatenate(target, [
          { key: kBig, size: big.length },
          { key: kBig, size: big.length },
          { key: kTail, size: tail.length },
        ]);
        expect(await storage.size(target)).toBe(2 * big.length + tail.length);
        expect((await readAll(await storage.read(target))).equals(Buffer.concat([big, big, tail]))).toBe(true);
      });

      it('of only empty sources is a zero-length object', async () => {
        const target = uniqueKey();
        await storage.concatenate(target, [{ key: empty, size: 0 }]);
        expect(await storage.size(target)).toBe(0);
      });

      it('is idempotent: a target that already has the full size is left as it is', async () => {
        const target = uniqueKey();
        const already = randomBytes(data.length);
        await putObject(storage, target, already);
        await storage.concatenate(target, [{ key, size: data.length }]);
        expect((await readAll(await storage.read(target))).equals(already)).toBe(true);
      });

      it('a missing source is ObjectNotFoundError and leaves no target behind', async () => {
        const target = uniqueKey();
        await expect(
          storage.concatenate(target, [
            { key, size: data.length },
            { key: uniqueKey(), size: 10 },
          ]),
        ).rejects.toBeInstanceOf(ObjectNotFoundError);
        expect(await storage.size(target)).toBeNull();
        expect((await subject.rawKeys()).filter((k) => k.startsWith(target))).toEqual([]);
      });
    });

    describe('move', () => {
      it('moves an object (and drops its tus bookkeeping): the old key is gone, the new one reads the same', async () => {
        const from = uniqueKey();
        const bytes = randomBytes(50_000);
        await putObject(storage, from, bytes);
        const to = `${QUARANTINE_PREFIX}${from}`;
        await storage.move(from, to);
        expect(await storage.size(from)).toBeNull();
        await expect(storage.read(from)).rejects.toBeInstanceOf(ObjectNotFoundError);
        expect((await readAll(await storage.read(to))).equals(bytes)).toBe(true);
        expect(await storage.size(to)).toBe(bytes.length);
        expect((await subject.rawKeys()).filter((k) => k.startsWith(from))).toEqual([]);
      });

      it('moves a zero-length object, and back out of quarantine', async () => {
        const from = uniqueKey();
        await putObject(storage, from, Buffer.alloc(0));
        await storage.move(from, `${QUARANTINE_PREFIX}${from}`);
        await storage.move(`${QUARANTINE_PREFIX}${from}`, from);
        expect(await storage.size(from)).toBe(0);
        expect(await storage.size(`${QUARANTINE_PREFIX}${from}`)).toBeNull();
      });

      it('moving a missing key is ObjectNotFoundError', async () => {
        await expect(storage.move(uniqueKey(), `${QUARANTINE_PREFIX}${uniqueKey()}`)).rejects.toBeInstanceOf(ObjectNotFoundError);
      });
    });

    describe('write', () => {
      it('writes a small object whole under the previews prefix, replaces it, and lists it', async () => {
        const target = `${PREVIEW_PREFIX}${uniqueKey()}`;
        await storage.write(target, Buffer.from('first'), 'text/plain');
        await storage.write(target, Buffer.from('second one'), 'text/plain');
        expect((await readAll(await storage.read(target))).toString()).toBe('second one');
        expect(await storage.size(target)).toBe(10);
        expect((await listAll(storage)).find((o) => o.key === target)).toMatchObject({ size: 10 });
        await storage.remove(target);
        expect(await storage.size(target)).toBeNull();
      });
    });

    describe('remove', () => {
      it('removes an object and everything beside it', async () => {
        const id = uniqueKey();
        await putObject(storage, id, randomBytes(20_000));
        await storage.remove(id);
        expect(await storage.size(id)).toBeNull();
        expect((await subject.rawKeys()).filter((k) => k.startsWith(id))).toEqual([]);
      });

      it('removes an unfinished upload: bytes, bookkeeping and (S3) the open multipart upload', async () => {
        const id = uniqueKey();
        await storage.tusStore.create(new Upload({ id, size: 8 * MiB, offset: 0, metadata: {} }));
        await storage.tusStore.write(Readable.from([randomBytes(MiB)]), id, 0);
        await storage.remove(id);
        expect((await subject.rawKeys()).filter((k) => k.startsWith(id))).toEqual([]);
        expect(await subject.openUploads()).not.toContain(id);
        await expect(storage.tusStore.getUpload(id)).rejects.toMatchObject({ status_code: 404 });
      });

      it('removes a quarantined object', async () => {
        const id = uniqueKey();
        await putObject(storage, id, randomBytes(100));
        await storage.move(id, `${QUARANTINE_PREFIX}${id}`);
        await storage.remove(`${QUARANTINE_PREFIX}${id}`);
        expect(await storage.size(`${QUARANTINE_PREFIX}${id}`)).toBeNull();
      });

      it('a missing key is fine (resolves), also twice', async () => {
        const id = uniqueKey();
        await expect(storage.remove(id)).resolves.toBeUndefined();
        await putObject(storage, id, randomBytes(10));
        await storage.remove(id);
        await expect(storage.remove(id)).resolves.toBeUndefined();
      });
    });

    describe('list', () => {
      it('yields every data object once (quarantine too), never tus bookkeeping, with size and date', async () => {
        const fresh = uniqueKey();
        const bytes = randomBytes(4321);
        await putObject(storage, fresh, bytes);
        const quarantined = uniqueKey();
        await putObject(storage, quarantined, randomBytes(99));
        await storage.move(quarantined, `${QUARANTINE_PREFIX}${quarantined}`);
        const unfinished = uniqueKey();
        await storage.tusStore.create(new Upload({ id: unfinished, size: 8 * MiB, offset: 0, metadata: {} }));
        await storage.tusStore.write(Readable.from([randomBytes(1000)]), unfinished, 0); // S3: a `.part`

        const objects = await listAll(storage);
        const keys = objects.map((o) => o.key);
        expect(new Set(keys).size).toBe(keys.length);
        for (const object of objects) {
          expect(object.key).not.toMatch(/\.(json|info|part|assembling)$/);
          expect(object.modifiedAt).toBeInstanceOf(Date);
          expect(Number.isNaN(object.modifiedAt.getTime())).toBe(false);
        }
        expect(objects.find((o) => o.key === fresh)).toMatchObject({ size: bytes.length });
        expect(objects.find((o) => o.key === key)).toMatchObject({ size: data.length });
        expect(objects.find((o) => o.key === empty)).toMatchObject({ size: 0 });
        expect(objects.find((o) => o.key === `${QUARANTINE_PREFIX}${quarantined}`)).toMatchObject({ size: 99 });
        expect(keys).not.toContain(quarantined);
        // An unfinished upload is listed (the orphan sweep must see it), with the bytes it holds as
        // an object: the file so far on disk, none on S3 (they are in the multipart upload).
        const listed = objects.find((o) => o.key === unfinished);
        expect(listed).toBeDefined();
        expect([0, 1000]).toContain(listed!.size);

        // Every data object the backend holds is listed: nothing escapes the orphan sweep.
        const raw = await subject.rawKeys();
        const dataKeys = new Set(raw.map((k) => k.replace(/\.(json|info|part)$/, '')));
        expect(new Set(keys)).toEqual(dataKeys);
        await storage.remove(unfinished);
      });

      it('no longer yields removed or moved-away objects', async () => {
        const id = uniqueKey();
        await putObject(storage, id, randomBytes(10));
        expect((await listAll(storage)).map((o) => o.key)).toContain(id);
        await storage.remove(id);
        expect((await listAll(storage)).map((o) => o.key)).not.toContain(id);
      });
    });

    describe('ping', () => {
      it('resolves on a reachable backend', async () => {
        await expect(storage.ping()).resolves.toBeUndefined();
      });

      it('is StorageUnavailableError when the backend cannot be reached', async () => {
        const broken = await subject.unreachable();
        await expect(broken.ping()).rejects.toBeInstanceOf(StorageUnavailableError);
      });
    });
  });
}
