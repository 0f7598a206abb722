// Request and response schemas of the REST API. The same zod schemas validate requests,
// serialise responses and generate the OpenAPI document (/docs), so the three cannot drift.
import { z } from 'zod';
import { KINDS } from '../config/index.js';
import { SCAN_STATUSES, STORAGE_TIERS, UPLOAD_STATUSES } from '../db/schema.js';

export const ErrorBody = z
  .object({
    error: z
      .object({
        code: z.string().describe('Stable machine-readable code, e.g. QUOTA_EXCEEDED'),
        message: z.string().describe('What went wrong and what to do, for people'),
      })
      .catchall(z.unknown()),
  })
  .meta({ id: 'Error' });

export const errorResponses = {
  400: ErrorBody,
  401: ErrorBody,
  404: ErrorBody,
} as const;

export const UploadId = z
  .string()
  .regex(/^[0-9a-f]{32}$/, 'an upload id is 32 hexadecimal characters')
  .describe('The upload id: the last path segment of the tus Location URL');

export const FileIdParams = z.object({ id: z.string().max(200) });

export const FileRecord = z
  .object({
    id: z.string(),
    ownerId: z.string(),
    filename: z.string(),
    mimeType: z.string().nullable(),
    kind: z.enum(KINDS),
    size: z.number().int().nullable(),
    status: z.enum(UPLOAD_STATUSES),
    sha256: z.string().nullable(),
    md5: z.string().nullable(),
    deduplicated: z
      .boolean()
      .describe("True when another of the owner's own files has the same bytes (shared storage); another owner's copy is never disclosed"),
    rejectionReason: z.string().nullable(),
    failureReason: z.string().nullable(),
    createdAt: z.string(),
    completedAt: z.string().nullable(),
    readyAt: z.string().nullable(),
    expiresAt: z.string().nullable(),
    scan: z.object({
      status: z.enum(SCAN_STATUSES),
      signature: z.string().nullable(),
      scannedAt: z.string().nullable(),
    }),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    metadataError: z.string().nullable(),
    transport: z.enum(['tus', 'ietf', 's3-direct']).describe('The protocol that brought the bytes'),
    interopVersion: z.number().int().nullable().describe('For transport "ietf": the draft interop version'),
    appMetadata: z.record(z.string(), z.unknown()).nullable().describe("What the application's pre-create hook attached (PRE_CREATE_HOOK_URL)"),
    storageTier: z.enum(STORAGE_TIERS).describe('The storage class the bytes are in; archived files are restored before download'),
    lastAccessedAt: z.string().nullable().describe('The last download (updated at most hourly)'),
    archivedAt: z.string().nullable(),
    restoredUntil: z.string().nullable().describe('An archived file downloads until then (POST /api/files/:id/restore)'),
  })
  .meta({ id: 'FileRecord' });

export const RestoreAnswer = z
  .object({
    status: z.enum(['available', 'restoring']).describe('available: the file downloads now'),
    retryAfter: z.number().int().nullable().describe('While restoring: seconds until the restore is expected to be done'),
  })
  .meta({ id: 'RestoreAnswer' });

export const ListFilesQuery = z.object({
  status: z.enum(UPLOAD_STATUSES).exclude(['deleted']).optional(),
  kind: z.enum(KINDS).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional().describe('The nextCursor of the previous page'),
});

export const FileList = z
  .object({
    files: z.array(FileRecord),
    nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page'),
  })
  .meta({ id: 'FileList' });

export const Quota = z
  .object({
    ownerId: z.string(),
    maxBytes: z.number().int().nullable().describe('Stored bytes allowed; null = unlimited'),
    maxFiles: z.number().int().nullable(),
    maxFileSize: z.number().int().nullable(),
    monthlyBytes: z.number().int().nullable().describe('Bytes that may be uploaded per calendar month (UTC)'),
    usedBytes: z.number().int(),
    fileCount: z.number().int(),
    reservedBytes: z.number().int().describe('Bytes held by uploads in progress'),
    reservedFiles: z.number().int(),
    monthBytes: z.number().int().describe('Bytes uploaded this calendar month'),
    monthStart: z.string(),
  })
  .meta({ id: 'Quota' });

const limit = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable();
export const QuotaUpdate = z
  .object({
    maxBytes: limit.optional(),
    maxFiles: z.number().int().min(0).max(2 ** 31 - 1).nullable().optional(),
    maxFileSize: limit.optional(),
    monthlyBytes: limit.optional(),
  })
  .strict()
  .describe('Any subset; null returns that limit to the configured default')
  .meta({ id: 'QuotaUpdate' });

export const OwnerIdParams = z.object({ ownerId: z.string().regex(/^[A-Za-z0-9._:@|+=-]{1,200}$/) });

export const DownloadLink = z
  .object({ url: z.string(), expiresAt: z.string() })
  .meta({ id: 'DownloadLink' });
