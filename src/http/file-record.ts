// The file record clients see (DESIGN.md: GET /api/files/:id). Field names are a contract.
import type { FileRow } from '../db/files.js';
import type { z } from 'zod';
import type { Kind } from '../config/index.js';
import type { FileRecord as FileRecordSchema } from './schemas.js';

export type FileRecord = z.output<typeof FileRecordSchema>;

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

function scanOf({ upload, blob }: FileRow): FileRecord['scan'] {
  if (blob) return { status: blob.scanStatus, signature: blob.scanSignature, scannedAt: iso(blob.scannedAt) };
  // Rejected before its content was kept (e.g. the bytes are not what the name says): never scanned.
  const neverScanned = upload.status === 'rejected' || upload.status === 'expired' || upload.status === 'failed';
  return { status: neverScanned ? 'skipped' : 'pending', signature: null, scannedAt: null };
}

export function toFileRecord(row: FileRow): FileRecord {
  const { upload, blob } = row;
  return {
    id: upload.id,
    ownerId: upload.ownerId,
    filename: upload.filename,
    // Once the bytes are sniffed, the type they really are; before that, what the client said.
    mimeType: blob?.mimeType ?? upload.mimeType,
    kind: upload.kind as Kind,
    size: upload.size,
    status: upload.status,
    sha256: upload.sha256,
    md5: upload.md5,
    deduplicated: upload.deduplicated,
    rejectionReason: upload.rejectionReason,
    failureReason: upload.failureReason,
    createdAt: upload.createdAt.toISOString(),
    completedAt: iso(upload.completedAt),
    readyAt: iso(upload.readyAt),
    expiresAt: upload.status === 'uploading' ? iso(upload.expiresAt) : null,
    scan: scanOf(row),
    metadata: (blob?.metadata as Record<string, unknown> | null) ?? null,
    metadataError: blob?.metadataError ?? null,
  };
}
