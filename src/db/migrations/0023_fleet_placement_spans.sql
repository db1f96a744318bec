CREATE TABLE "fleet_placement_spans" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"deployment_id" uuid NOT NULL,
	"replica" integer NOT NULL,
	"node_id" uuid NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"ended_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "fleet_placement_spans" ADD CONSTRAINT "fleet_placement_spans_node_id_fleet_nodes_id_fk" FOREIGN KEY ("node_id") REFERENCES "public"."fleet_nodes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "fleet_placement_spans_deployment_idx" ON "fleet_placement_spans" USING btree ("deployment_id","replica");--> statement-breakpoint
INSERT INTO "fleet_placement_spans" ("deployment_id", "replica", "node_id", "started_at") SELECT "deployment_id", "replica", "node_id", "placed_at" FROM "fleet_placements";
