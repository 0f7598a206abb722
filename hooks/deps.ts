// What the tus lifecycle hooks need from the rest of the application. Hooks talk to the
// database; they never call tasks (they enqueue through the database) nor touch storage, except
// to ask how many bytes of an unfinished upload are stored (`storedOffset`, wired by the
// composition root), which no record says.
import type { Config } from '../src/config/index.js';
import type { Db } from '../src/db/client.js';
import type { UploadRecords } from '../src/db/uploads.js';
import type { Logger } from '../src/logger.js';
import type { ArrivalDigest } from '../src/storage/digesting-store.js';
import type { PreCreateHook } from '../src/webhooks/pre-create.js';
import type { FinishInline } from '../tasks/steps/finish-inline.js';

export interface HookDeps {
  db: Db;
  config: Config;
  logger: Logger;
  /** Upload creation and finish, batched with concurrent requests of this process. */
  records: UploadRecords;
  /**
   * The bytes stored of an unfinished upload (its tus offset), for HEAD of a final upload whose
   * partials are still arriving (concatenation-unfinished). Rejects with @tus/utils'
   * ERRORS.FILE_NOT_FOUND when the store has no such upload.
   */
  storedOffset(uploadId: string): Promise<number>;
  /**
   * The digests of an upload's `size` bytes if they were all hashed as this process received
   * them (src/storage/digesting-store.ts), else null; the running state is gone afterwards. Waits
   * for the hashing thread to finish the upload's bytes.
   */
  takeArrivalDigest(uploadId: string, size: number): Promise<ArrivalDigest | null>;
  /**
   * Processes a small finished upload in the transaction that finishes it, from its arrival digest
   * (tasks/steps/finish-inline.ts); false when it did not, and the processing job is enqueued.
   */
  finishInline?: FinishInline;
  /** The application's say on every creation (src/webhooks/pre-create.ts). */
  preCreate: PreCreateHook;
}
