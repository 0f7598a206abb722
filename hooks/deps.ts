// What the tus lifecycle hooks need from the rest of the application. Hooks talk to the
// database only; they never call tasks (they enqueue through the database) nor touch storage.
import type { Config } from '../src/config/index.js';
import type { Db } from '../src/db/client.js';
import type { UploadRecords } from '../src/db/uploads.js';
import type { Logger } from '../src/logger.js';

export interface HookDeps {
  db: Db;
  config: Config;
  logger: Logger;
  /** Upload creation and finish, batched with concurrent requests of this process. */
  records: UploadRecords;
}
