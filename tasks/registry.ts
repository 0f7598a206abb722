// Every task of the job registry (src/db/jobs.ts: names, payload schemas, job keys) bound to the
// code that runs it, and the periodic schedule. The type makes a task the registry names but no
// code runs (or the other way round) a compile error.
import type { Task } from 'graphile-worker';
import { jobKey, type TaskName } from '../src/db/jobs.js';
import type { TaskDeps } from './deps.js';
import { concatUpload } from './concat-upload.js';
import { deliverWebhook } from './deliver-webhook.js';
import { extractMetadata } from './extract-metadata.js';
import { lifecycle } from './lifecycle.js';
import { makePreviews } from './make-previews.js';
import { processUpload } from './process-upload.js';
import { reconcileTask } from './reconcile.js';
import { restoreBlob } from './restore-blob.js';
import { scanBlob } from './scan-blob.js';

export function taskList(deps: TaskDeps): { [T in TaskName]: Task<T> } {
  return {
    process_upload: processUpload(deps),
    extract_metadata: extractMetadata(deps),
    scan_blob: scanBlob(deps),
    make_previews: makePreviews(deps),
    concat_upload: concatUpload(deps),
    reconcile: reconcileTask(deps),
    lifecycle: lifecycle(deps),
    restore_blob: restoreBlob(deps),
    deliver_webhook: deliverWebhook(deps),
  };
}

/** graphile-worker's crontab: the reconciler every minute, the lifecycle sweep on its schedule. */
export function crontab(lifecycleSchedule: string): string {
  const line = (schedule: string, task: TaskName, key: string, max: number) =>
    `${schedule} ${task} ?jobKey=${key}&jobKeyMode=replace&max=${max}`;
  return [
    line('* * * * *', 'reconcile', jobKey('reconcile', {}), 1),
    line(lifecycleSchedule, 'lifecycle', jobKey('lifecycle', {}), 3),
  ].join('\n');
}
