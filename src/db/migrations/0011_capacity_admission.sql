ALTER TABLE "deployments" ADD COLUMN "wait_reason" text;--> statement-breakpoint
ALTER TABLE "deployments" ADD COLUMN "queued_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "deployments" ADD COLUMN "holds_capacity" boolean DEFAULT false NOT NULL;--> statement-breakpoint
CREATE INDEX "deployments_capacity_idx" ON "deployments" USING btree ("provider") WHERE "deployments"."holds_capacity";--> statement-breakpoint
ALTER TABLE "deployments" ADD CONSTRAINT "deployments_wait_reason_check" CHECK ("deployments"."wait_reason" in ('insufficient_capacity'));--> statement-breakpoint
UPDATE "deployments" SET "holds_capacity" = true WHERE "status" IN ('scheduled', 'deploying', 'starting', 'running', 'unhealthy', 'stopping', 'deleting');