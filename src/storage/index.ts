// Chooses the storage backend from configuration.
import type { Config } from '../config/index.js';
import { createFileStorage } from './file.js';
import { createS3Storage } from './s3.js';
import type { ObjectStorage } from './types.js';

export * from './types.js';

export function createStorage(config: Config): ObjectStorage {
  // Expiry is tracked per upload in the database (activity extends it), not by the tus stores.
  const expirationMs = 0;
  if (config.storage === 's3') {
    return createS3Storage({ ...config.s3, expirationMs });
  }
  return createFileStorage(config.fileStorageDir, { expirationMs });
}
