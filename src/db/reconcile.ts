// Queries for the reconciler: finished uploads that slipped through.
import { sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { JOBS } from './jobs.js';

export interface StaleUpload {
  id: string;
  storage_key: string | null;
}

/** Unfinished uploads with no activity for a while: their bytes may all be there already. */
export async function staleUploading(db: Db, olderThanMs: number, limit: number): Promise<StaleUpload[]> {
  return db.execute<StaleUpload & Record<string, unknown>>(sql`
    select id, storage_key from uploads
    where status = 'uploading' and updated_at < now() - make_interval(secs => ${olderThanMs / 1000})
    order by updated_at
    limit ${limit}`);
}

export interface OrphanedProcessing {
  id: string;
  blob_sha256: string | null;
  metadata_done: boolean | null;
  scan_status: string | null;
}

/**
 * Uploads in `processing` for a while with no job that would move them on (a job lost to a
 * crash, or a finalize that never ran).
 */
export async function processingWithoutJobs(db: Db, olderThanMs: number, limit: number): Promise<OrphanedProcessing[]> {
  return db.execute<OrphanedProcessing & Record<string, unknown>>(sql`
    select u.id, u.blob_sha256, b.metadata_done, b.scan_status
    from uploads u
    left join blobs b on b.sha256 = u.blob_sha256
    where u.status = 'processing'
      and u.updated_at < now() - make_interval(secs => ${olderThanMs / 1000})
      and not exists (
        select 1 from graphile_worker.jobs j
        where j.key in (
          ${JOBS.process_upload.key.sql(sql`u.id`)},
          ${JOBS.extract_metadata.key.sql(sql`u.blob_sha256`)},
          ${JOBS.scan_blob.key.sql(sql`u.blob_sha256`)})
      )
    order by u.updated_at
    limit ${limit}`);
}
