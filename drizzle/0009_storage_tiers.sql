ALTER TABLE "uploads" ADD COLUMN "last_accessed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "blobs" ADD COLUMN "storage_tier" text DEFAULT 'standard' NOT NULL;--> statement-breakpoint
ALTER TABLE "blobs" ADD COLUMN "archived_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "blobs" ADD COLUMN "restore_requested_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "blobs" ADD COLUMN "restored_until" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "blobs" ADD CONSTRAINT "blobs_storage_tier_known" CHECK ("blobs"."storage_tier" in ('standard', 'infrequent', 'archive'));
