ALTER TABLE "deployments" ADD COLUMN "retrying_since" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "deployments" ADD COLUMN "starting_since" timestamp with time zone;