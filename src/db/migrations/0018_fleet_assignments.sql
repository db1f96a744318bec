ALTER TABLE "deployments" DROP CONSTRAINT "deployments_wait_reason_check";--> statement-breakpoint
ALTER TABLE "fleet_placements" ADD COLUMN "generation" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "deployments" ADD CONSTRAINT "deployments_wait_reason_check" CHECK ("deployments"."wait_reason" in ('insufficient_capacity', 'no_node_fits'));