// tus concatenation in the database: partial uploads (hidden chunks of a file) and final uploads
// (the file, assembled from its partials by the `concat_upload` job).
import { and, arrayContains, eq, inArray, sql } from 'drizzle-orm';
import type { Kind } from '../config/index.js';
import type { Db } from './client.js';
import { enqueueJob, JOBS } from './jobs.js';
import { releaseQuota, type QuotaDefaults } from './quota.js';
import { uploads, type UploadRow } from './schema.js';
import { insertUpload } from './uploads.js';
import type { Executor } from './tx.js';

export const PARTIAL = 'partial';

export function isPartial(upload: Pick<UploadRow, 'uploadConcat'>): boolean {
  return upload.uploadConcat === PARTIAL;
}

export function isFinal(upload: Pick<UploadRow, 'uploadConcat'>): boolean {
  return upload.uploadConcat?.startsWith('final;') ?? false;
}

export async function findUploads(db: Executor, ids: string[]): Promise<UploadRow[]> {
  if (ids.length === 0) return [];
  return db.select().from(uploads).where(inArray(uploads.id, ids));
}

export interface NewFinal {
  id: string;
  ownerId: string;
  filename: string;
  mimeType: string | null;
  kind: Kind;
  size: number;
  tusMetadata: Record<string, string | null>;
  /** What the application's pre-create hook attached. */
  appMetadata?: Record<string, unknown> | null;
  uploadConcat: string;
  parts: string[];
  expiresAt: Date;
}

/**
 * Creates a final upload. The bytes its partials reserved become the final's reservation (the
 * partials' are released, the sum reserved on the final, in one transaction), and the assembly
 * job is enqueued: it assembles as soon as every partial is complete (now, or when the last one
 * finishes — concatenation-unfinished).
 */
export async function createFinalUpload(db: Db, input: NewFinal, quota: QuotaDefaults, maxAttempts: number): Promise<UploadRow> {
  return db.transaction(async (tx) => {
    for (const part of new Set(input.parts)) await releaseQuota(tx, part);
    const row = await insertUpload(tx, { ...input, concatParts: input.parts }, quota);
    await enqueueJob(tx, 'concat_upload', { uploadId: input.id }, { maxAttempts });
    return row;
  });
}

/** A partial upload finished: every final waiting for it may now be assembled. */
export async function enqueueFinalsOf(db: Db, partialId: string, maxAttempts: number): Promise<number> {
  return db.transaction(async (tx) => {
    const finals = await tx
      .select({ id: uploads.id })
      .from(uploads)
      .where(and(eq(uploads.status, 'uploading'), arrayContains(uploads.concatParts, [partialId])));
    for (const final of finals) {
      await enqueueJob(tx, 'concat_upload', { uploadId: final.id }, { maxAttempts });
    }
    return finals.length;
  });
}

/** After assembly, partials stay a little while (a client MAY reuse them), then expire. */
export async function retirePartials(db: Executor, ids: string[], graceMs: number): Promise<void> {
  if (ids.length === 0) return;
  await db
    .update(uploads)
    .set({ expiresAt: sql`least(coalesce(${uploads.expiresAt}, 'infinity'), now() + make_interval(secs => ${graceMs / 1000}))` })
    .where(and(inArray(uploads.id, ids), eq(uploads.status, 'uploading'), eq(uploads.uploadConcat, PARTIAL)));
}

/** Final uploads still waiting for assembly, idle for a while (for the reconciler). */
export async function staleFinals(db: Db, olderThanMs: number, limit: number): Promise<string[]> {
  const rows = await db.execute<{ id: string }>(sql`
    select id from uploads u
    where status = 'uploading' and upload_concat like 'final;%'
      and updated_at < now() - make_interval(secs => ${olderThanMs / 1000})
      and not exists (select 1 from graphile_worker.jobs j where j.key = ${JOBS.concat_upload.key.sql(sql`u.id`)})
    limit ${limit}`);
  return rows.map((row) => row.id);
}
