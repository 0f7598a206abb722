ALTER TABLE "uploads" ADD COLUMN "transport" text DEFAULT 'tus' NOT NULL;--> statement-breakpoint
ALTER TABLE "uploads" ADD COLUMN "interop_version" smallint;