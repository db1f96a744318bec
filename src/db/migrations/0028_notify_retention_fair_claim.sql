CREATE TABLE "notify_verification_sends" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"owner_id" uuid NOT NULL,
	"address_digest" text NOT NULL,
	"sent_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "notify_verification_sends_owner" ON "notify_verification_sends" USING btree ("owner_id","sent_at");--> statement-breakpoint
CREATE INDEX "notify_verification_sends_address" ON "notify_verification_sends" USING btree ("address_digest","sent_at");--> statement-breakpoint
CREATE INDEX "notifications_created" ON "notifications" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "notify_deliveries_target_due" ON "notify_deliveries" USING btree ("target_id","next_attempt_at") WHERE "notify_deliveries"."state" = 'pending';--> statement-breakpoint
CREATE INDEX "notify_deliveries_created" ON "notify_deliveries" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "outbox_events_created" ON "outbox_events" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "outbox_events_only_target" ON "outbox_events" USING btree ("only_target_id","created_at") WHERE "outbox_events"."only_target_id" is not null;