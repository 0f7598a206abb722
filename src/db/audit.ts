// The audit trail: who did what to which upload, written in the same transaction as the change.
import { auditLog } from './schema.js';
import type { Executor } from './tx.js';

export const AUDIT = {
  created: 'UPLOAD_CREATED',
  completed: 'UPLOAD_COMPLETED',
  ready: 'UPLOAD_READY',
  rejected: 'UPLOAD_REJECTED',
  infected: 'SECURITY_ALERT',
  failed: 'UPLOAD_FAILED',
  terminated: 'UPLOAD_TERMINATED',
  deleted: 'FILE_DELETED',
  expired: 'UPLOAD_EXPIRED',
  purged: 'FILE_PURGED',
  quotaChanged: 'QUOTA_CHANGED',
  orphanRemoved: 'ORPHAN_REMOVED',
  tierMoved: 'TIER_MOVED',
  restoreRequested: 'RESTORE_REQUESTED',
  restored: 'BLOB_RESTORED',
} as const;
export type AuditAction = (typeof AUDIT)[keyof typeof AUDIT];

export interface AuditEntry {
  action: AuditAction;
  ownerId?: string | null;
  uploadId?: string | null;
  actor?: string | null;
  details?: Record<string, unknown>;
  /**
   * Entries written by retried jobs pass a key (e.g. `ready:<uploadId>`) so that a job that runs
   * twice still leaves one entry.
   */
  dedupeKey?: string;
}

export async function audit(tx: Executor, entry: AuditEntry): Promise<void> {
  await tx
    .insert(auditLog)
    .values({
      action: entry.action,
      ownerId: entry.ownerId ?? null,
      uploadId: entry.uploadId ?? null,
      actor: entry.actor ?? null,
      details: entry.details ?? null,
      dedupeKey: entry.dedupeKey ?? null,
    })
    .onConflictDoNothing();
}
