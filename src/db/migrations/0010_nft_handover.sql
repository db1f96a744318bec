ALTER TABLE "deployments" ADD COLUMN "handover" text;--> statement-breakpoint
ALTER TABLE "deployments" ADD COLUMN "handover_seq" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "deployments" ADD COLUMN "volume_generation" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "deployments" ADD CONSTRAINT "deployments_handover_check" CHECK ("deployments"."handover" in ('fresh', 'carry'));