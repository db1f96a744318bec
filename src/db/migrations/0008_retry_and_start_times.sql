ALTER TABLE "deployments" ADD COLUMN "retrying_since" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "deployments" ADD COLUMN "starting_since" timestamp with time zone;--> statement-breakpoint
UPDATE "deployments" SET "starting_since" = now() WHERE "status" = 'starting';