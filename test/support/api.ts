// Small HTTP helpers for the REST API.
import { waitFor } from './ports.js';

export interface FileRecord {
  id: string;
  status: string;
  size: number | null;
  sha256: string | null;
  md5: string | null;
  kind: string;
  deduplicated: boolean;
  rejectionReason: string | null;
  failureReason: string | null;
  metadata: Record<string, unknown> | null;
  metadataError: string | null;
  scan: { status: string; signature: string | null; scannedAt: string | null };
  [field: string]: unknown;
}

export const FINAL = ['ready', 'rejected', 'infected', 'failed', 'expired', 'deleted'];

export async function getFile(baseUrl: string, id: string, headers: Record<string, string> = {}): Promise<FileRecord> {
  const response = await fetch(`${baseUrl}/api/files/${id}`, { headers });
  if (!response.ok) throw new Error(`GET /api/files/${id}: ${response.status} ${await response.text()}`);
  return (await response.json()) as FileRecord;
}

/** Polls the record until it reaches a final status. */
export async function waitForFinal(
  baseUrl: string,
  id: string,
  { headers = {}, timeoutMs = 30_000 }: { headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<FileRecord> {
  return waitFor(
    async () => {
      const record = await getFile(baseUrl, id, headers);
      return FINAL.includes(record.status) ? record : null;
    },
    { timeoutMs, intervalMs: 50, what: `upload ${id} to reach a final status` },
  );
}

/** POST /api/admin/uploads/cleanup as an admin: the lifecycle report (an error unless 200). */
export async function runCleanup<T>(baseUrl: string, adminHeaders: Record<string, string>, dryRun: boolean): Promise<T> {
  const response = await fetch(`${baseUrl}/api/admin/uploads/cleanup`, {
    method: 'POST',
    headers: { ...adminHeaders, 'Content-Type': 'application/json' },
    body: JSON.stringify({ dryRun }),
  });
  if (response.status !== 200) throw new Error(`cleanup answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}
