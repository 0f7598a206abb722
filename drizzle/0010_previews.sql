CREATE TABLE "previews" (
	"sha256" text NOT NULL,
	"kind" text NOT NULL,
	"options_hash" text NOT NULL,
	"status" text NOT NULL,
	"storage_key" text,
	"content_type" text,
	"size" bigint,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "previews_sha256_kind_options_hash_pk" PRIMARY KEY("sha256","kind","options_hash"),
	CONSTRAINT "previews_status_known" CHECK ("previews"."status" in ('ready', 'failed')),
	CONSTRAINT "previews_ready_has_object" CHECK ("previews"."status" <> 'ready' or "previews"."storage_key" is not null)
);
--> statement-breakpoint
ALTER TABLE "previews" ADD CONSTRAINT "previews_sha256_blobs_sha256_fk" FOREIGN KEY ("sha256") REFERENCES "public"."blobs"("sha256") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "previews_storage_key_idx" ON "previews" USING btree ("storage_key") WHERE "previews"."storage_key" is not null;
