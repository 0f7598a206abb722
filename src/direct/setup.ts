// Direct-to-bucket uploads as the composition root wires them (STORAGE=s3 only), with the start
// check of the bucket's CORS configuration (a warning: the bucket may be set up after the start).
import type { Config } from '../config/index.js';
import type { Logger } from '../logger.js';
import type { ObjectStorage } from '../storage/types.js';
import type { HookDeps } from '../../hooks/deps.js';
import { corsProblem } from './bucket-cors.js';
import { directUploads, type DirectUploads } from './direct-uploads.js';

export async function setUpDirectUploads(config: Config, hooks: HookDeps, storage: ObjectStorage, logger: Logger): Promise<DirectUploads | undefined> {
  if (config.storage !== 's3') return undefined;
  const { createDirectBucket } = await import('../storage/s3-direct.js');
  const bucket = createDirectBucket({ ...config.s3, presignExpirySeconds: Math.max(1, Math.round(config.s3.presignExpiryMs / 1000)) });
  const origins = [...new Set([...(config.publicUrl ? [new URL(config.publicUrl).origin] : []), ...(config.corsOrigins ?? [])])].filter((o) => o !== '*');
  void bucket.corsRules().then(
    (rules) => {
      for (const origin of origins) {
        const problem = corsProblem(rules, origin);
        if (problem) logger.warn({ origin, bucket: config.s3.bucket }, `direct-to-bucket uploads from ${origin} will fail: ${problem} (see README, "Direct-to-bucket uploads")`);
      }
    },
    (error: unknown) => logger.warn({ err: error }, 'could not read the bucket CORS configuration'),
  );
  return directUploads({ hooks, bucket, storage });
}
