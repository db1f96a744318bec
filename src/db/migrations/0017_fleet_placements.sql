CREATE TABLE "fleet_placements" (
	"deployment_id" uuid NOT NULL,
	"replica" integer NOT NULL,
	"node_id" uuid NOT NULL,
	"owner_id" uuid NOT NULL,
	"milli_cpus" bigint NOT NULL,
	"memory_mb" bigint NOT NULL,
	"disk_mb" bigint NOT NULL,
	"gpus" integer DEFAULT 0 NOT NULL,
	"gpu_model" text,
	"placed_at" timestamp with time zone NOT NULL,
	"reason" text NOT NULL,
	CONSTRAINT "fleet_placements_deployment_id_replica_pk" PRIMARY KEY("deployment_id","replica")
);
--> statement-breakpoint
ALTER TABLE "fleet_nodes" ADD COLUMN "first_heartbeat_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "fleet_placements" ADD CONSTRAINT "fleet_placements_node_id_fleet_nodes_id_fk" FOREIGN KEY ("node_id") REFERENCES "public"."fleet_nodes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "fleet_placements_node_idx" ON "fleet_placements" USING btree ("node_id");