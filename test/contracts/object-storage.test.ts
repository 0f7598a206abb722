// The ObjectStorage contract (object-storage.contract.ts) on both backends as the application
// builds them: a real directory, and a real bucket on moto.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createStorage } from '../../src/storage/index.js';
import { StorageUnavailableError } from '../../src/storage/types.js';
import { fileBackend, s3Backend } from '../support/storage-backends.js';
import { objectStorageContract } from './object-storage.contract.js';

const brokenDirs: string[] = [];

objectStorageContract('file', async () => {
  const backend = await fileBackend();
  return {
    ...backend,
    async unreachable() {
      // Storage that worked, until its directory was replaced by a regular file.
      const dir = await mkdtemp(path.join(os.tmpdir(), 'tusvault-contract-broken-'));
      brokenDirs.push(dir);
      const files = path.join(dir, 'files');
      const storage = await createStorage(loadConfig({ STORAGE: 'file', DATA_DIR: dir, FILE_STORAGE_DIR: files }));
      await storage.ping();
      await rm(files, { recursive: true });
      await writeFile(files, 'not a directory');
      return storage;
    },
    async close() {
      await backend.close();
      for (const dir of brokenDirs.splice(0)) await rm(dir, { recursive: true, force: true });
    },
  };
});

objectStorageContract('s3', async () => {
  const backend = await s3Backend();
  return {
    ...backend,
    // A bucket that does not exist on a reachable S3.
    unreachable: async () => (await s3Backend({ bucket: `missing-${randomBytes(5).toString('hex')}` })).storage,
  };
});

describe('file storage whose directory cannot be created', () => {
  it('is a StorageUnavailableError of createStorage, not an uncaught exception later', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tusvault-contract-uncreatable-'));
    try {
      await writeFile(path.join(dir, 'a-file'), 'x');
      const config = loadConfig({ STORAGE: 'file', DATA_DIR: dir, FILE_STORAGE_DIR: path.join(dir, 'a-file', 'files') });
      await expect(createStorage(config)).rejects.toBeInstanceOf(StorageUnavailableError);
      // @tus/file-store's own mkdir callback would throw now, had it been reached.
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
