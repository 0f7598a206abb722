// Direct-to-bucket uploads: the S3 operations the server performs or presigns so that a browser or
// app sends the bytes straight to the bucket (multipart parts, or one presigned POST for a small
// file). Like the storage seam it knows keys and bytes, nothing of records.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetBucketCorsCommand,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CORSRule,
  type Part,
} from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { s3ClientConfig, unavailable, type S3StorageOptions } from './s3.js';

export interface UploadedPart {
  PartNumber: number;
  ETag: string;
  Size: number;
}

/** One S3 operation a client may have presigned for its own key (`signRequest` of @uppy/aws-s3). */
export type PresignableOperation =
  | { operation: 'createMultipartUpload'; contentType: string | null }
  | { operation: 'uploadPart'; uploadId: string; partNumber: number }
  | { operation: 'listParts'; uploadId: string }
  | { operation: 'completeMultipartUpload'; uploadId: string }
  | { operation: 'abortMultipartUpload'; uploadId: string }
  | { operation: 'putObject'; contentType: string | null };

export interface DirectBucket {
  createMultipartUpload(key: string, contentType: string | null): Promise<string>;
  presignPart(key: string, uploadId: string, partNumber: number): Promise<string>;
  presign(key: string, operation: PresignableOperation): Promise<string>;
  /** Every part S3 holds of the upload; null when S3 knows no such multipart upload. */
  listParts(key: string, uploadId: string): Promise<UploadedPart[] | null>;
  /** False when S3 refuses the list of parts (a part missing, an ETag that does not match). */
  completeMultipartUpload(key: string, uploadId: string, parts: Array<{ PartNumber: number; ETag: string }>): Promise<boolean>;
  abortMultipartUpload(key: string, uploadId: string): Promise<void>;
  /** A presigned POST form for exactly `key` and at most `maxSize` bytes. */
  presignPost(key: string, maxSize: number, contentType: string | null): Promise<{ url: string; fields: Record<string, string> }>;
  /** The bucket's CORS rules, or null when it has no CORS configuration. */
  corsRules(): Promise<CORSRule[] | null>;
}

export interface DirectBucketOptions extends Omit<S3StorageOptions, 'partSize' | 'expirationMs'> {
  /** How long a presigned request stays valid. */
  presignExpirySeconds: number;
  /** Where clients reach the bucket, when not at `endpoint` (an internal hostname): presigned URLs name it. */
  publicEndpoint?: string | null;
}

const PART_LIST_PAGE = 1000;

function s3Code(error: unknown): string {
  const e = error as { name?: string; Code?: string };
  return e?.name ?? e?.Code ?? '';
}

export function createDirectBucket(options: DirectBucketOptions): DirectBucket {
  const client = new S3Client(s3ClientConfig(options));
  // A presigned request's signature covers its host, so it is signed for the host clients use.
  const signer = options.publicEndpoint ? new S3Client(s3ClientConfig({ ...options, endpoint: options.publicEndpoint })) : client;
  const Bucket = options.bucket;
  const expiresIn = options.presignExpirySeconds;

  return {
    async createMultipartUpload(key, contentType) {
      try {
        const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key: key, ...(contentType ? { ContentType: contentType } : {}) }));
        if (!UploadId) throw new Error('S3 answered CreateMultipartUpload without an UploadId');
        return UploadId;
      } catch (error) {
        throw unavailable('create multipart upload', key, error);
      }
    },

    presignPart(key, uploadId, partNumber) {
      return getSignedUrl(signer, new UploadPartCommand({ Bucket, Key: key, UploadId: uploadId, PartNumber: partNumber }), { expiresIn });
    },

    presign(key, operation) {
      const contentType = (type: string | null) => (type ? { ContentType: type } : {});
      switch (operation.operation) {
        case 'createMultipartUpload':
          return getSignedUrl(signer, new CreateMultipartUploadCommand({ Bucket, Key: key, ...contentType(operation.contentType) }), { expiresIn });
        case 'uploadPart':
          return this.presignPart(key, operation.uploadId, operation.partNumber);
        case 'listParts':
          return getSignedUrl(signer, new ListPartsCommand({ Bucket, Key: key, UploadId: operation.uploadId }), { expiresIn });
        case 'completeMultipartUpload':
          return getSignedUrl(signer, new CompleteMultipartUploadCommand({ Bucket, Key: key, UploadId: operation.uploadId }), { expiresIn });
        case 'abortMultipartUpload':
          return getSignedUrl(signer, new AbortMultipartUploadCommand({ Bucket, Key: key, UploadId: operation.uploadId }), { expiresIn });
        case 'putObject':
          return getSignedUrl(signer, new PutObjectCommand({ Bucket, Key: key, ...contentType(operation.contentType) }), { expiresIn });
      }
    },

    async listParts(key, uploadId) {
      const parts: UploadedPart[] = [];
      let marker: string | undefined;
      try {
        for (;;) {
          const page = await client.send(
            new ListPartsCommand({ Bucket, Key: key, UploadId: uploadId, MaxParts: PART_LIST_PAGE, PartNumberMarker: marker }),
          );
          for (const part of page.Parts ?? []) parts.push(toUploadedPart(part));
          if (!page.IsTruncated || !page.NextPartNumberMarker) return parts;
          marker = page.NextPartNumberMarker;
        }
      } catch (error) {
        if (s3Code(error) === 'NoSuchUpload') return null;
        throw unavailable('list parts of', key, error);
      }
    },

    async completeMultipartUpload(key, uploadId, parts) {
      try {
        await client.send(
          new CompleteMultipartUploadCommand({ Bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
        );
        return true;
      } catch (error) {
        if (['InvalidPart', 'InvalidPartOrder', 'EntityTooSmall', 'MalformedXML', 'NoSuchUpload'].includes(s3Code(error))) return false;
        throw unavailable('complete multipart upload', key, error);
      }
    },

    async abortMultipartUpload(key, uploadId) {
      try {
        await client.send(new AbortMultipartUploadCommand({ Bucket, Key: key, UploadId: uploadId }));
      } catch (error) {
        if (s3Code(error) === 'NoSuchUpload') return;
        throw unavailable('abort multipart upload', key, error);
      }
    },

    async presignPost(key, maxSize, contentType) {
      const { url, fields } = await createPresignedPost(signer, {
        Bucket,
        Key: key,
        Expires: expiresIn,
        Conditions: [['content-length-range', 0, maxSize], ...(contentType ? [{ 'Content-Type': contentType }] : [])],
        Fields: contentType ? { 'Content-Type': contentType } : {},
      });
      return { url, fields };
    },

    async corsRules() {
      try {
        const { CORSRules } = await client.send(new GetBucketCorsCommand({ Bucket }));
        return CORSRules ?? [];
      } catch (error) {
        if (s3Code(error) === 'NoSuchCORSConfiguration') return null;
        throw unavailable('read the CORS configuration of', Bucket, error);
      }
    },
  };
}

function toUploadedPart(part: Part): UploadedPart {
  return { PartNumber: part.PartNumber ?? 0, ETag: part.ETag ?? '', Size: part.Size ?? 0 };
}
