// The file record clients see (DESIGN.md: GET /api/files/:id), built from an upload row and its
// blob. Pure, so the files API (src/http) and the webhook task (tasks/) build the same record.
// Field names are a contract; src/http/schemas.ts describes them for OpenAPI and checks the type.
import { getTableColumns } from 'drizzle-orm';
import type { Kind } from '../config/index.js';
import type { FileRow } from './files.js';
import { blobs, uploads, type BlobRow, type ScanStatus, type StorageTier, type UploadRow, type UploadStatus } from './schema.js';

export interface FileRecordData {
  id: string;
  ownerId: string;
  filename: string;
  mimeType: string | null;
  kind: Kind;
  size: number | null;
  status: UploadStatus;
  sha256: string | null;
  md5: string | null;
  deduplicated: boolean;
  rejectionReason: string | null;
  failureReason: string | null;
  createdAt: string;
  completedAt: string | null;
  readyAt: string | null;
  expiresAt: string | null;
  scan: { status: ScanStatus; signature: string | null; scannedAt: string | null };
  metadata: Record<string, unknown> | null;
  metadataError: string | null;
  transport: 'tus' | 'ietf' | 's3-direct';
  interopVersion: number | null;
  appMetadata: Record<string, unknown> | null;
  storageTier: StorageTier;
  lastAccessedAt: string | null;
  archivedAt: string | null;
  /** An archived file's restored copy is readable until then (null: not restored). */
  restoredUntil: string | null;
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

function scanOf({ upload, blob }: FileRow): FileRecordData['scan'] {
  if (blob) return { status: blob.scanStatus, signature: blob.scanSignature, scannedAt: iso(blob.scannedAt) };
  // Rejected before its content was kept (e.g. the bytes are not what the name says): never scanned.
  const neverScanned = upload.status === 'rejected' || upload.status === 'expired' || upload.status === 'failed';
  return { status: neverScanned ? 'skipped' : 'pending', signature: null, scannedAt: null };
}

export function toFileRecord(row: FileRow): FileRecordData {
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
    transport: upload.transport ?? 'tus',
    interopVersion: upload.interopVersion ?? null,
    appMetadata: upload.appMetadata ?? null,
    storageTier: blob?.storageTier ?? 'standard',
    lastAccessedAt: iso(upload.lastAccessedAt),
    archivedAt: iso(blob?.archivedAt),
    restoredUntil: blob?.storageTier === 'archive' ? iso(blob.restoredUntil) : null,
  };
}

/** A row of `table` from its `to_jsonb()` form (SQL column names, timestamps as text). */
function rowFromJson<T>(table: typeof uploads | typeof blobs, json: Record<string, unknown>): T {
  const row: Record<string, unknown> = {};
  for (const [key, column] of Object.entries(getTableColumns(table))) {
    const value = json[column.name] ?? null;
    row[key] = value !== null && column.columnType === 'PgTimestamp' ? new Date(value as string) : value;
  }
  return row as T;
}

/** The FileRow of a webhook event's snapshot ({upload, blob} as the outbox trigger wrote them). */
export function fileRowFromSnapshot(snapshot: { upload: Record<string, unknown>; blob: Record<string, unknown> | null }): FileRow {
  return {
    upload: rowFromJson<UploadRow>(uploads, snapshot.upload),
    blob: snapshot.blob ? rowFromJson<BlobRow>(blobs, snapshot.blob) : null,
  };
}
