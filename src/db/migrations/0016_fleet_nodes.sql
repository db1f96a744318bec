CREATE TABLE "fleet_join_tokens" (
	"id" uuid PRIMARY KEY NOT NULL,
	"token_hash" text NOT NULL,
	"note" text,
	"uses_left" integer,
	"created_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "fleet_join_tokens_token_hash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
CREATE TABLE "fleet_nodes" (
	"id" uuid PRIMARY KEY NOT NULL,
	"operator_id" uuid NOT NULL,
	"name" text NOT NULL,
	"public_key" text NOT NULL,
	"labels" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"capacity" jsonb,
	"allocatable" jsonb,
	"agent_version" text,
	"instances" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"last_seq" bigint DEFAULT 0 NOT NULL,
	"last_seen_at" timestamp with time zone NOT NULL,
	"session_started_at" timestamp with time zone,
	"connectivity" text DEFAULT 'online' NOT NULL,
	"scheduling" text DEFAULT 'active' NOT NULL,
	"loss_count" integer DEFAULT 0 NOT NULL,
	"lost_at" timestamp with time zone,
	"enrolled_at" timestamp with time zone NOT NULL,
	"removed_at" timestamp with time zone,
	CONSTRAINT "fleet_nodes_connectivity_check" CHECK ("fleet_nodes"."connectivity" in ('online', 'lost')),
	CONSTRAINT "fleet_nodes_scheduling_check" CHECK ("fleet_nodes"."scheduling" in ('active', 'cordoned', 'draining'))
);
--> statement-breakpoint
CREATE TABLE "node_uptime_sessions" (
	"node_id" uuid NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"last_seen_at" timestamp with time zone NOT NULL,
	CONSTRAINT "node_uptime_sessions_node_id_started_at_pk" PRIMARY KEY("node_id","started_at")
);
--> statement-breakpoint
ALTER TABLE "fleet_nodes" ADD CONSTRAINT "fleet_nodes_operator_id_accounts_id_fk" FOREIGN KEY ("operator_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "node_uptime_sessions" ADD CONSTRAINT "node_uptime_sessions_node_id_fleet_nodes_id_fk" FOREIGN KEY ("node_id") REFERENCES "public"."fleet_nodes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "fleet_nodes_public_key_key" ON "fleet_nodes" USING btree ("public_key");--> statement-breakpoint
CREATE INDEX "fleet_nodes_operator_idx" ON "fleet_nodes" USING btree ("operator_id");--> statement-breakpoint
CREATE INDEX "fleet_nodes_online_idx" ON "fleet_nodes" USING btree ("last_seen_at") WHERE "fleet_nodes"."connectivity" = 'online' and "fleet_nodes"."removed_at" is null;