CREATE TABLE "fleet_log_lines" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"request_id" uuid NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"stream" text NOT NULL,
	"text" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "fleet_log_requests" (
	"id" uuid PRIMARY KEY NOT NULL,
	"node_id" uuid NOT NULL,
	"deployment_id" uuid NOT NULL,
	"tail" integer NOT NULL,
	"follow" boolean NOT NULL,
	"sent" boolean DEFAULT false NOT NULL,
	"done" boolean DEFAULT false NOT NULL,
	"last_batch" integer DEFAULT 0 NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "fleet_log_lines" ADD CONSTRAINT "fleet_log_lines_request_id_fleet_log_requests_id_fk" FOREIGN KEY ("request_id") REFERENCES "public"."fleet_log_requests"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "fleet_log_requests" ADD CONSTRAINT "fleet_log_requests_node_id_fleet_nodes_id_fk" FOREIGN KEY ("node_id") REFERENCES "public"."fleet_nodes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "fleet_log_lines_request_idx" ON "fleet_log_lines" USING btree ("request_id","id");--> statement-breakpoint
CREATE INDEX "fleet_log_requests_node_idx" ON "fleet_log_requests" USING btree ("node_id");