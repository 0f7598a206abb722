// Chooses the storage backend from configuration.
import type { Config } from '../config/index.js';
import { createFileStorage } from './file.js';
import type { TusInfoLookup } from './tus-info.js';
import type { ObjectStorage } from './types.js';

export * from './types.js';

export async function createStorage(config: Config, options: { tusInfo?: TusInfoLookup } = {}): Promise<ObjectStorage> {
  // Expiry is tracked per upload in the database (activity extends it), not by the tus stores.
  const expirationMs = 0;
  if (config.storage === 's3') {
    // Loaded only when used: the AWS SDK and @tus/s3-store are ~8 MiB of RSS a disk-backed server
    // (the default) would carry for nothing.
    const { createS3Storage } = await import('./s3.js');
    return createS3Storage({ ...config.s3, expirationMs });
  }
  // S3 keeps tus info in `<id>.info` objects of its own; disk storage reads it from records.
  const files = createFileStorage(config.fileStorageDir, { expirationMs, tusInfo: options.tusInfo });
  if (config.archive) {
    const { createArchivingStorage } = await import('./archive.js');
    return createArchivingStorage(files, config.archive);
  }
  return files;
}
