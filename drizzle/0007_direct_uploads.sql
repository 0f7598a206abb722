ALTER TABLE "uploads" ADD COLUMN "direct_upload_id" text;--> statement-breakpoint
CREATE UNIQUE INDEX "uploads_direct_upload_id_idx" ON "uploads" USING btree ("direct_upload_id") WHERE "uploads"."direct_upload_id" is not null;
