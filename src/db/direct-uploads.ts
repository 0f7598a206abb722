// Direct-to-bucket uploads' one field of their own: the S3 multipart upload their bytes go to.
import { and, eq, isNull } from 'drizzle-orm';
import type { Db } from './client.js';
import { uploads } from './schema.js';

/** Remembers the multipart upload of a direct upload that has none yet; false if it has one. */
export async function attachMultipartUpload(db: Db, id: string, multipartUploadId: string): Promise<boolean> {
  const rows = await db
    .update(uploads)
    .set({ directUploadId: multipartUploadId })
    .where(and(eq(uploads.id, id), eq(uploads.status, 'uploading'), isNull(uploads.directUploadId)))
    .returning({ id: uploads.id });
  return rows.length === 1;
}
