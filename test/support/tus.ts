// Uploading with tus-js-client (the Node build) over real HTTP.
import { createHash } from 'node:crypto';
import * as tus from 'tus-js-client';

export interface UploadOptions {
  endpoint: string;
  filename?: string;
  filetype?: string;
  chunkSize?: number;
  headers?: Record<string, string>;
  retryDelays?: number[];
  onProgress?: (sent: number, total: number) => void;
  uploadUrl?: string;
}

export function sha256(data: Buffer | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
export function md5(data: Buffer | Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}

export function createUpload(data: Buffer, options: UploadOptions, callbacks: { onSuccess(): void; onError(error: Error): void }): tus.Upload {
  return new tus.Upload(data, {
    endpoint: options.endpoint,
    ...(options.uploadUrl ? { uploadUrl: options.uploadUrl } : {}),
    chunkSize: options.chunkSize ?? Number.POSITIVE_INFINITY,
    retryDelays: options.retryDelays ?? [0, 200, 500],
    metadata: { filename: options.filename ?? 'file.bin', ...(options.filetype ? { filetype: options.filetype } : {}) },
    headers: options.headers ?? {},
    storeFingerprintForResuming: false,
    onProgress: options.onProgress,
    onSuccess: () => callbacks.onSuccess(),
    onError: (error) => callbacks.onError(error),
  });
}

/** Uploads `data` and resolves with the upload id (the last path segment of its URL). */
export async function upload(data: Buffer, options: UploadOptions): Promise<string> {
  let instance!: tus.Upload;
  await new Promise<void>((resolve, reject) => {
    instance = createUpload(data, options, { onSuccess: resolve, onError: reject });
    instance.start();
  });
  return idOf(instance.url!);
}

export function idOf(url: string): string {
  return new URL(url).pathname.split('/').pop()!;
}
