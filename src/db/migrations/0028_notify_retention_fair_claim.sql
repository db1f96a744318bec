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
CREATE INDEX "notify_deliveries_leased" ON "notify_deliveries" USING btree ("target_id") WHERE "notify_deliveries"."state" = 'pending' and "notify_deliveries"."lease_owner" is not null;--> statement-breakpoint
CREATE INDEX "notify_deliveries_created" ON "notify_deliveries" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "outbox_events_created" ON "outbox_events" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "outbox_events_only_target" ON "outbox_events" USING btree ("only_target_id","created_at") WHERE "outbox_events"."only_target_id" is not null;--> statement-breakpoint
-- Webhooks were listed with their whole URL, whose path or query may hold the receiver's token:
-- now with the scheme, the host and the path's last four characters.
UPDATE "notify_targets" AS t
   SET "shown" = parts.origin || CASE WHEN length(parts.path) > 1 THEN '/…' || right(parts.path, 4) ELSE '' END
  FROM (SELECT id,
               substring(shown from '^[a-z]+://[^/?#]+') AS origin,
               split_part(split_part(coalesce(substring(shown from '^[a-z]+://[^/?#]+([^?#]*)'), ''), '?', 1), '#', 1) AS path
          FROM "notify_targets" WHERE kind = 'webhook') AS parts
 WHERE t.id = parts.id AND parts.origin IS NOT NULL;
