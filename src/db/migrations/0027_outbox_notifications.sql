CREATE TABLE "notify_deliveries" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"event_seq" bigint NOT NULL,
	"target_id" uuid NOT NULL,
	"state" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone,
	"lease_owner" text,
	"lease_expires_at" timestamp with time zone,
	"last_status" integer,
	"last_latency_ms" integer,
	"last_error" text,
	"last_attempt_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "notify_deliveries_state_check" CHECK ("notify_deliveries"."state" in ('pending', 'succeeded', 'failed', 'cancelled'))
);
--> statement-breakpoint
CREATE TABLE "notify_targets" (
	"id" uuid PRIMARY KEY NOT NULL,
	"owner_id" uuid,
	"kind" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"event_types" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"disabled_reason" text,
	"shown" text NOT NULL,
	"sealed" text NOT NULL,
	"previous_secret_until" timestamp with time zone,
	"verified_at" timestamp with time zone,
	"verify_code_hash" text,
	"verify_attempts" integer DEFAULT 0 NOT NULL,
	"config_key" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "notify_targets_kind_check" CHECK ("notify_targets"."kind" in ('webhook', 'email', 'slack', 'discord', 'telegram'))
);
--> statement-breakpoint
CREATE TABLE "outbox_events" (
	"seq" bigserial PRIMARY KEY NOT NULL,
	"id" text DEFAULT ('evt_' || replace(gen_random_uuid()::text, '-', '')) NOT NULL,
	"owner_id" uuid,
	"type" text NOT NULL,
	"deployment_id" uuid,
	"payload" jsonb NOT NULL,
	"only_target_id" uuid,
	"position" bigint,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "outbox_head" (
	"id" integer PRIMARY KEY NOT NULL,
	"position" bigint NOT NULL
);
--> statement-breakpoint
ALTER TABLE "notifications" ADD COLUMN "event_id" text;--> statement-breakpoint
ALTER TABLE "notifications" ADD COLUMN "read_at" timestamp with time zone;--> statement-breakpoint
CREATE UNIQUE INDEX "notify_deliveries_event_target" ON "notify_deliveries" USING btree ("event_seq","target_id");--> statement-breakpoint
CREATE INDEX "notify_deliveries_due" ON "notify_deliveries" USING btree ("next_attempt_at") WHERE "notify_deliveries"."state" = 'pending';--> statement-breakpoint
CREATE INDEX "notify_deliveries_target" ON "notify_deliveries" USING btree ("target_id","created_at");--> statement-breakpoint
CREATE INDEX "notify_targets_owner" ON "notify_targets" USING btree ("owner_id","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "outbox_events_id" ON "outbox_events" USING btree ("id");--> statement-breakpoint
CREATE INDEX "outbox_events_unpublished" ON "outbox_events" USING btree ("seq") WHERE "outbox_events"."position" is null;--> statement-breakpoint
CREATE INDEX "outbox_events_owner_position" ON "outbox_events" USING btree ("owner_id","position");--> statement-breakpoint
CREATE UNIQUE INDEX "notifications_account_event" ON "notifications" USING btree ("account_id","event_id");--> statement-breakpoint
INSERT INTO "outbox_head" ("id", "position") VALUES (1, 0);
--> statement-breakpoint
-- Committed events and deliveries wake the publisher and the senders (on every replica) at once;
-- a NOTIFY is delivered only when its transaction commits, so nothing uncommitted is looked for.
CREATE FUNCTION berth_notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify(TG_ARGV[0], '');
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER outbox_events_wake AFTER INSERT ON "outbox_events"
  FOR EACH STATEMENT EXECUTE FUNCTION berth_notify_outbox('berth_outbox');
--> statement-breakpoint
CREATE TRIGGER notify_deliveries_wake AFTER INSERT ON "notify_deliveries"
  FOR EACH STATEMENT EXECUTE FUNCTION berth_notify_outbox('berth_deliveries');
--> statement-breakpoint
-- The in-app list names events as the outbox does.
UPDATE "notifications" SET "type" = 'nft.transferred' WHERE "type" IN ('nft_transferred', 'nft_burned');
