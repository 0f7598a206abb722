// Direct-to-bucket uploads (STORAGE=s3) with @uppy/aws-s3: the bytes go from this browser straight
// to the bucket with URLs the server presigns for the caller's own upload. Without a token the
// server's Companion-compatible routes are used as they are (`companionEndpoint`); with a token
// (AUTH_MODE=jwt) each request is presigned by POST /api/s3/sign, which can carry it. Once the bytes
// are in the bucket, POST /api/s3/confirm has the server check them and process the file.
import type Uppy from '@uppy/core';
import AwsS3 from '@uppy/aws-s3';
import { api, apiUrl, type PublicConfig } from './api.js';

type Meta = Record<string, unknown>;
type Body = Record<string, never>;

const MiB = 2 ** 20;
/** Files above this go in parts (resumable after a reload, from the parts the bucket lists); smaller ones in one presigned POST. */
const MULTIPART_ABOVE = 16 * MiB;
/** S3 parts are at least 5 MiB; larger parts mean fewer presign round trips. */
const PART_SIZE = 8 * MiB;

interface SignableRequest {
  method: string;
  key: string;
  uploadId?: string;
  partNumber?: number;
  contentType?: string;
}

type SignedRequest = { url: string; key?: string; fields?: Record<string, string>; headers?: Record<string, string> };

const sign = (request: SignableRequest) =>
  api<SignedRequest>('api/s3/sign', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(request) });

export function useDirectUploads(uppy: Uppy<Meta, Body>, config: PublicConfig): void {
  const common = {
    id: 'AwsS3',
    shouldUseMultipart: (file: { size: number | null }) => (file.size ?? 0) > MULTIPART_ABOVE,
    getChunkSize: () => PART_SIZE,
    allowedMetaFields: ['name', 'type'],
    limit: 3,
  };
  if (config.authMode === 'jwt') {
    // The key the browser proposes is only a name: the server chooses the real key and says so.
    uppy.use(AwsS3<Meta, Body>, { ...common, signRequest: sign, generateObjectKey: (file) => file.name ?? 'file' });
  } else {
    uppy.use(AwsS3<Meta, Body>, { ...common, companionEndpoint: apiUrl('api').replace(/\/$/, '') });
  }
}

/** The server checks what landed and starts processing; a completed multipart upload is confirmed already (idempotent). */
export async function confirmDirectUpload(key: string): Promise<void> {
  await api('api/s3/confirm', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ key }) });
}
