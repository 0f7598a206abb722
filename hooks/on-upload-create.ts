// onUploadCreate: validate what the client declares (name, type, length) against the type policy,
// ask the application (the pre-create hook), then insert the upload record with its reservation
// (checking the owner's quota). Anything wrong is a clear 4xx before a single byte is stored, and a
// refused creation leaves no record, reservation or event behind.
import type { Upload } from '@tus/utils';
import { declaredFile, declaredKind } from './policy.js';
import { requestContextOf } from '../src/tus/request-context.js';
import type { Kind } from '../src/config/index.js';
import { admitUpload, metadataForHook } from '../src/webhooks/pre-create.js';
import type { HookDeps } from './deps.js';

export function onUploadCreate(deps: HookDeps) {
  return async (req: Request, upload: Upload): Promise<{ metadata?: Upload['metadata'] }> => {
    const context = requestContextOf(req);
    const { principal, partial } = context;
    const metadata = upload.metadata ?? {};
    const { filename, mimeType: declaredType } = declaredFile(metadata, req.headers.get('upload-metadata'));
    const size = upload.sizeIsDeferred || upload.size === undefined ? null : upload.size;

    // A partial upload (tus concatenation) is a chunk of a file: the type policy applies to the
    // final upload that assembles it; here only the size ceiling (enforced by tus) applies.
    const kind: Kind = partial ? 'other' : declaredKind(deps, { filename, mimeType: declaredType, size });
    // Partials are asked about through their final (hooks/on-concat-final.ts), which names the file.
    const appMetadata = partial
      ? null
      : await admitUpload(deps.preCreate, {
          owner: principal.ownerId,
          filename,
          size,
          mimeType: declaredType,
          kind,
          metadata: metadataForHook(metadata),
          protocol: context.interopVersion !== undefined ? 'ietf' : 'tus',
        });

    await deps.records.create({
      id: upload.id,
      ownerId: principal.ownerId,
      filename,
      mimeType: declaredType,
      kind,
      size,
      tusMetadata: metadata,
      appMetadata,
      uploadConcat: partial ? 'partial' : null,
      // The protocol is remembered, so the other one cannot continue the upload.
      ...(context.interopVersion !== undefined ? { transport: 'ietf' as const, interopVersion: context.interopVersion } : {}),
      // Bytes of unknown length count against the quota before they are stored (creation-with-upload).
      ...(size === null ? { reserveBytes: Number(req.headers.get('content-length') ?? 0) } : {}),
      expiresAt: new Date(Date.now() + deps.config.uploadExpiryMs),
    });
    context.createdUploadId = upload.id;
    return { metadata };
  };
}
