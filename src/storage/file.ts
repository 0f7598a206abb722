// Local-disk storage: @tus/file-store writes <dir>/<id> (bytes); what it would keep in
// <dir>/<id>.json (length, metadata) the server reads from the upload's record (tus-info.ts).
import { createReadStream, createWriteStream, mkdirSync } from 'node:fs';
import { access, constants, mkdir, open, opendir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileStore } from '@tus/file-store';
import { reportDurableProgress } from './durable-progress.js';
import { DurableFileSink } from './file-sink.js';
import { RecordTusInfo, type TusInfoLookup } from './tus-info.js';
import { ERRORS, type Upload } from '@tus/utils';
import {
  isMissingFile,
  ObjectNotFoundError,
  StorageUnavailableError,
  type ByteRange,
  type ObjectStorage,
  type StoredObject,
} from './types.js';

const TUS_INFO_SUFFIX = '.json';
const KEY_PATTERN = /^(?:quarantine\/|previews\/)?[A-Za-z0-9_-]+$/;
// Read chunks: Node's default for a small object; 1 MiB (fewer thread-pool round trips) for a
// large one. A chunk is allocated at this size for every read, so small objects keep the small one.
const MIN_READ_CHUNK = 64 * 1024;
const MAX_READ_CHUNK = 1024 * 1024;

/**
 * FileStore whose writes reach the disk before the PATCH is acknowledged: the sink is fsync'd
 * before it finishes, so an acknowledged offset survives a power cut, not just a crash. It writes
 * from two 1 MiB buffers in turn and starts fdatasyncs while the body is still arriving.
 */
class DurableFileStore extends FileStore {
  override async create(file: Upload): Promise<Upload> {
    if (!KEY_PATTERN.test(file.id)) throw ERRORS.FILE_NOT_FOUND;
    const filePath = path.join(this.directory, file.id);
    // FileStore makes the directory for every upload; it exists (made at start, kept by the
    // readiness probe), so only a missing one costs the mkdir.
    await writeFile(filePath, '').catch(async (error: unknown) => {
      if (!isMissingFile(error)) throw error;
      await mkdir(this.directory, { recursive: true });
      await writeFile(filePath, '');
    });
    await this.configstore.set(file.id, file);
    file.storage = { type: 'file', path: filePath };
    return file;
  }

  /** Uploads expire from the database (the expiry sweep), never by the store's own clock. */
  override async deleteExpired(): Promise<number> {
    return 0;
  }

  override async write(readable: Readable, fileId: string, offset: number): Promise<number> {
    if (!KEY_PATTERN.test(fileId)) throw ERRORS.FILE_NOT_FOUND;
    const filePath = path.join(this.directory, fileId);
    const writable = new DurableFileSink(filePath, offset, { onDurable: (durable) => reportDurableProgress(fileId, durable) });
    try {
      await pipeline(readable, writable);
    } catch {
      // Whatever reached the file counts: the next HEAD reports it as the offset.
      throw ERRORS.FILE_WRITE_ERROR;
    }
    return offset + writable.bytesWritten;
  }
}

export interface FileStorageOptions {
  expirationMs: number;
  /**
   * Where the tus store reads an upload's length and metadata: its record (the server), or
   * without one `<id>.json` beside the bytes, as @tus/file-store writes it.
   */
  tusInfo?: TusInfoLookup;
}

export function createFileStorage(directory: string, options: FileStorageOptions): ObjectStorage {
  const root = path.resolve(directory);
  // FileStore makes its directory in the background and throws from that callback when it cannot
  // (an uncaught exception that ends the process): made here first, that is this call's error.
  try {
    mkdirSync(root, { recursive: true });
  } catch (error) {
    throw new StorageUnavailableError(`storage directory ${root} cannot be created`, { cause: error });
  }
  const tusStore = new DurableFileStore({
    directory: root,
    expirationPeriodInMilliseconds: options.expirationMs,
    ...(options.tusInfo ? { configstore: new RecordTusInfo(root, options.tusInfo) } : {}),
  });

  // Keys come from our own records, but they are still checked: a key can never leave the root.
  const resolve = (key: string) => {
    if (!KEY_PATTERN.test(key)) throw new ObjectNotFoundError(key);
    return path.join(root, key);
  };

  return {
    backend: 'file',
    tusStore,

    async completeUpload(): Promise<void> {},

    async read(key: string, range?: ByteRange, expectedSize?: number | null): Promise<Readable> {
      // Opened here, not lazily by the stream: a missing object is an error of this call.
      let handle;
      try {
        handle = await open(resolve(key), 'r');
      } catch (error) {
        if (isMissingFile(error) || error instanceof ObjectNotFoundError) throw new ObjectNotFoundError(key);
        throw new StorageUnavailableError(`cannot read ${key}`, { cause: error });
      }
      const length = range ? range.end - range.start + 1 : (expectedSize ?? 0);
      const highWaterMark = Math.min(MAX_READ_CHUNK, Math.max(MIN_READ_CHUNK, length));
      return handle.createReadStream(range ? { start: range.start, end: range.end, highWaterMark } : { highWaterMark });
    },

    async size(key: string): Promise<number | null> {
      try {
        const info = await stat(resolve(key));
        return info.isFile() ? info.size : null;
      } catch (error) {
        if (isMissingFile(error) || error instanceof ObjectNotFoundError) return null;
        throw new StorageUnavailableError(`cannot stat ${key}`, { cause: error });
      }
    },

    async concatenate(targetKey: string, sources: Array<{ key: string; size: number }>): Promise<void> {
      const target = resolve(targetKey);
      const total = sources.reduce((sum, source) => sum + source.size, 0);
      if ((await this.size(targetKey)) === total) return;
      // Write beside the target and rename: a crash never leaves a half-assembled file in place.
      const partial = `${target}.assembling`;
      const out = createWriteStream(partial, { flush: true });
      try {
        for (const source of sources) {
          const input = createReadStream(resolve(source.key), { start: 0, end: Math.max(0, source.size - 1) });
          if (source.size === 0) {
            input.destroy();
            continue;
          }
          await pipeline(input, out, { end: false });
        }
        await new Promise<void>((done, fail) => out.end((error?: Error | null) => (error ? fail(error) : done())));
        await rename(partial, target);
      } catch (error) {
        out.destroy();
        await rm(partial, { force: true });
        if (isMissingFile(error)) throw new ObjectNotFoundError(targetKey);
        throw new StorageUnavailableError(`cannot assemble ${targetKey}`, { cause: error });
      }
    },

    async move(fromKey: string, toKey: string): Promise<void> {
      const to = resolve(toKey);
      await mkdir(path.dirname(to), { recursive: true });
      try {
        // Same filesystem: an atomic rename, no copy.
        await rename(resolve(fromKey), to);
      } catch (error) {
        if (isMissingFile(error)) throw new ObjectNotFoundError(fromKey);
        throw new StorageUnavailableError(`cannot move ${fromKey}`, { cause: error });
      }
      await rm(resolve(fromKey) + TUS_INFO_SUFFIX, { force: true });
    },

    async write(key: string, bytes: Uint8Array): Promise<void> {
      const file = resolve(key);
      // Beside the target, then renamed: a crash never leaves half an object at the key.
      const partial = `${file}.writing`;
      try {
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(partial, bytes, { flush: true });
        await rename(partial, file);
      } catch (error) {
        await rm(partial, { force: true });
        throw new StorageUnavailableError(`cannot write ${key}`, { cause: error });
      }
    },

    async remove(key: string): Promise<void> {
      const file = resolve(key);
      await rm(file, { force: true });
      await rm(file + TUS_INFO_SUFFIX, { force: true });
    },

    async *list(): AsyncIterable<StoredObject> {
      for (const prefix of ['', 'quarantine/', 'previews/']) {
        let dir;
        try {
          dir = await opendir(path.join(root, prefix));
        } catch (error) {
          if (isMissingFile(error)) continue;
          throw error;
        }
        for await (const entry of dir) {
          if (!entry.isFile() || entry.name.endsWith(TUS_INFO_SUFFIX)) continue;
          const key = prefix + entry.name;
          if (!KEY_PATTERN.test(key)) continue;
          const info = await stat(path.join(root, key)).catch(() => null);
          if (info) yield { key, size: info.size, modifiedAt: info.mtime };
        }
      }
    },

    async ping(): Promise<void> {
      try {
        await mkdir(root, { recursive: true });
        await access(root, constants.W_OK);
      } catch (error) {
        throw new StorageUnavailableError(`storage directory ${root} is not writable`, { cause: error });
      }
    },
  };
}
