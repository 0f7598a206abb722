CREATE TABLE "audit_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"action" text NOT NULL,
	"owner_id" text,
	"upload_id" text,
	"actor" text,
	"details" jsonb,
	"dedupe_key" text
);
--> statement-breakpoint
CREATE TABLE "blobs" (
	"sha256" text PRIMARY KEY NOT NULL,
	"md5" text NOT NULL,
	"size" bigint NOT NULL,
	"storage_key" text NOT NULL,
	"ref_count" integer DEFAULT 0 NOT NULL,
	"kind" text NOT NULL,
	"format" text,
	"mime_type" text,
	"metadata" jsonb,
	"metadata_error" text,
	"metadata_done" boolean DEFAULT false NOT NULL,
	"validation_error" text,
	"scan_status" text DEFAULT 'pending' NOT NULL,
	"scan_signature" text,
	"scan_error" text,
	"scanned_at" timestamp with time zone,
	"quarantined_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "blobs_ref_count_nonneg" CHECK ("blobs"."ref_count" >= 0)
);
--> statement-breakpoint
CREATE TABLE "owners" (
	"id" text PRIMARY KEY NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"max_bytes" bigint,
	"max_files" integer,
	"max_file_size" bigint,
	"monthly_bytes" bigint,
	"used_bytes" bigint DEFAULT 0 NOT NULL,
	"file_count" integer DEFAULT 0 NOT NULL,
	"reserved_bytes" bigint DEFAULT 0 NOT NULL,
	"reserved_files" integer DEFAULT 0 NOT NULL,
	"month_bytes" bigint DEFAULT 0 NOT NULL,
	"month_start" date,
	CONSTRAINT "owners_used_bytes_nonneg" CHECK ("owners"."used_bytes" >= 0),
	CONSTRAINT "owners_reserved_bytes_nonneg" CHECK ("owners"."reserved_bytes" >= 0),
	CONSTRAINT "owners_file_count_nonneg" CHECK ("owners"."file_count" >= 0),
	CONSTRAINT "owners_reserved_files_nonneg" CHECK ("owners"."reserved_files" >= 0)
);
--> statement-breakpoint
CREATE TABLE "server_secrets" (
	"name" text PRIMARY KEY NOT NULL,
	"value" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "uploads" (
	"id" text PRIMARY KEY NOT NULL,
	"owner_id" text NOT NULL,
	"filename" text NOT NULL,
	"mime_type" text,
	"kind" text NOT NULL,
	"size" bigint,
	"status" text DEFAULT 'uploading' NOT NULL,
	"reserved_bytes" bigint DEFAULT 0 NOT NULL,
	"quota_state" text DEFAULT 'none' NOT NULL,
	"sha256" text,
	"md5" text,
	"detected_mime_type" text,
	"scan_status" text,
	"blob_sha256" text,
	"deduplicated" boolean DEFAULT false NOT NULL,
	"rejection_reason" text,
	"failure_reason" text,
	"storage_key" text,
	"tus_metadata" jsonb,
	"upload_concat" text,
	"concat_parts" text[],
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp with time zone,
	"ready_at" timestamp with time zone,
	"finalized_at" timestamp with time zone,
	"deleted_at" timestamp with time zone,
	"expires_at" timestamp with time zone,
	CONSTRAINT "uploads_size_nonneg" CHECK ("uploads"."size" is null or "uploads"."size" >= 0)
);
--> statement-breakpoint
ALTER TABLE "uploads" ADD CONSTRAINT "uploads_owner_id_owners_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."owners"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "uploads" ADD CONSTRAINT "uploads_blob_sha256_blobs_sha256_fk" FOREIGN KEY ("blob_sha256") REFERENCES "public"."blobs"("sha256") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "audit_owner_idx" ON "audit_log" USING btree ("owner_id","at");--> statement-breakpoint
CREATE INDEX "audit_upload_idx" ON "audit_log" USING btree ("upload_id","at");--> statement-breakpoint
CREATE INDEX "audit_action_idx" ON "audit_log" USING btree ("action","at");--> statement-breakpoint
CREATE UNIQUE INDEX "audit_dedupe_idx" ON "audit_log" USING btree ("dedupe_key");--> statement-breakpoint
CREATE INDEX "blobs_storage_key_idx" ON "blobs" USING btree ("storage_key");--> statement-breakpoint
CREATE INDEX "blobs_shared_idx" ON "blobs" USING btree ("ref_count") WHERE "blobs"."ref_count" > 1;--> statement-breakpoint
CREATE INDEX "uploads_owner_created_idx" ON "uploads" USING btree ("owner_id","created_at","id");--> statement-breakpoint
CREATE INDEX "uploads_status_updated_idx" ON "uploads" USING btree ("status","updated_at");--> statement-breakpoint
CREATE INDEX "uploads_blob_idx" ON "uploads" USING btree ("blob_sha256");--> statement-breakpoint
CREATE INDEX "uploads_sha256_idx" ON "uploads" USING btree ("sha256");--> statement-breakpoint
CREATE INDEX "uploads_storage_key_idx" ON "uploads" USING btree ("storage_key");--> statement-breakpoint
CREATE INDEX "uploads_expires_idx" ON "uploads" USING btree ("expires_at") WHERE "uploads"."status" = 'uploading';--> statement-breakpoint
CREATE INDEX "uploads_finalized_idx" ON "uploads" USING btree ("status","finalized_at");--> statement-breakpoint
CREATE INDEX "uploads_created_idx" ON "uploads" USING btree ("created_at");