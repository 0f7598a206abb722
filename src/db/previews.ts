// The previews of a blob's content: what exists, what failed and why, per (content, kind,
// options hash). Written by the make_previews task, read by the previews API.
import { and, desc, eq, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { addJob } from './jobs.js';
import { previews, type PreviewRow } from './schema.js';
import type { Executor } from './tx.js';

export type NewPreview =
  | { sha256: string; kind: string; optionsHash: string; status: 'ready'; storageKey: string; contentType: string; size: number }
  | { sha256: string; kind: string; optionsHash: string; status: 'failed'; error: string };

/** The kinds already made (or given up on) for this content and option set. */
export async function previewKindsDone(db: Executor, sha256: string, optionsHash: string): Promise<Set<string>> {
  const rows = await db
    .select({ kind: previews.kind })
    .from(previews)
    .where(and(eq(previews.sha256, sha256), eq(previews.optionsHash, optionsHash)));
  return new Set(rows.map((row) => row.kind));
}

/** Records a preview once; a repeated job's second record is ignored. */
export async function savePreview(db: Executor, preview: NewPreview): Promise<void> {
  await db.insert(previews).values(preview).onConflictDoNothing();
}

/** The newest preview of each kind of this content (made with the options in force when it was). */
export async function latestPreviews(db: Executor, sha256: string): Promise<PreviewRow[]> {
  return db
    .selectDistinctOn([previews.kind])
    .from(previews)
    .where(eq(previews.sha256, sha256))
    .orderBy(previews.kind, desc(previews.createdAt));
}

/**
 * Enqueues the blob's previews once its metadata is known (audio needs its duration) and its
 * verdict lets it have any (clean, or skipped without a scanner): never for infected, pending or
 * unscannable content. Called by whichever step finishes last; the job is idempotent, so a
 * repeated step's second enqueue costs one cheap run.
 */
export async function enqueuePreviewsIfClean(db: Db, sha256: string, maxAttempts: number): Promise<void> {
  await db.execute(sql`
    select ${addJob('make_previews', { sha256 }, { maxAttempts })}
    from blobs where sha256 = ${sha256} and metadata_done and scan_status in ('clean', 'skipped')`);
}
