// Removing stored objects that a committed change stopped pointing at (a deleted file, a duplicate
// copy, a refused or abandoned upload). The change is already durable, so a failure here is not the
// caller's failure: it is logged and the lifecycle's orphan sweep removes what is left.
import type { Logger } from '../logger.js';
import type { ObjectStorage } from './types.js';

export async function removeUnreferenced(
  storage: Pick<ObjectStorage, 'remove'>,
  keys: Iterable<string>,
  logger: Pick<Logger, 'warn'>,
): Promise<void> {
  for (const key of keys) {
    await storage.remove(key).catch((error: unknown) => logger.warn({ err: error, key }, 'could not remove an unreferenced stored object; the orphan sweep will'));
  }
}
