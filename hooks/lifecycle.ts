// The upload lifecycle as the upload endpoint sees it (src/tus/lifecycle.ts): one object, built
// once in the composition root, whose every decision is made by the modules of this folder.
import { AUDIT } from '../src/db/audit.js';
import { removeFile } from '../src/db/files.js';
import { touchUpload } from '../src/db/uploads.js';
import type { UploadLifecycle } from '../src/tus/lifecycle.js';
import type { HookDeps } from './deps.js';
import { createFinal } from './on-concat-final.js';
import { onIncomingRequest, settleArrivedBytes } from './on-incoming-request.js';
import { onUploadCreate } from './on-upload-create.js';
import { finishUpload, onUploadFinish } from './on-upload-finish.js';

export function uploadLifecycle(deps: HookDeps): UploadLifecycle {
  return {
    incoming: (request) => onIncomingRequest(deps, request),
    createFinal: (request) => createFinal(deps, request),
    finish: async (uploadId, offset, partial) => {
      await finishUpload(deps, uploadId, offset, partial);
    },
    settleArrivedBytes: (uploadId, storedOffset) => settleArrivedBytes(deps, uploadId, storedOffset),
    touch: (uploadId, expiresAt) => touchUpload(deps.db, uploadId, expiresAt),
    discardFailedCreation: async (uploadId) => {
      // The client got no Location and will create again: this record must not live on holding a
      // reservation (or be finished by the reconciler as a duplicate).
      const removed = await removeFile(deps.db, uploadId, {
        actor: 'server',
        action: AUDIT.terminated,
        status: 'deleted',
        onlyIf: ['uploading', 'processing'],
      });
      return removed?.objectsToRemove ?? [];
    },
    onUploadCreate: onUploadCreate(deps),
    onUploadFinish: onUploadFinish(deps),
  };
}
