CREATE TABLE "audit_entries" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"owner_id" uuid NOT NULL,
	"seq" bigint NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"actor_type" text NOT NULL,
	"actor_id" text NOT NULL,
	"action" text NOT NULL,
	"target" text NOT NULL,
	"ip" text,
	"request_id" text,
	"outcome" text NOT NULL,
	"detail" jsonb,
	"prev_hash" text NOT NULL,
	"hash" text NOT NULL,
	CONSTRAINT "audit_entries_actor_type_check" CHECK ("audit_entries"."actor_type" in ('account', 'key', 'operator', 'system', 'chain')),
	CONSTRAINT "audit_entries_outcome_check" CHECK ("audit_entries"."outcome" in ('ok', 'denied'))
);
--> statement-breakpoint
CREATE TABLE "audit_heads" (
	"owner_id" uuid PRIMARY KEY NOT NULL,
	"seq" bigint NOT NULL,
	"hash" text NOT NULL
);
--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "deleted_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "last_used_ip" text;--> statement-breakpoint
CREATE UNIQUE INDEX "audit_entries_owner_seq_key" ON "audit_entries" USING btree ("owner_id","seq");--> statement-breakpoint
CREATE INDEX "audit_entries_owner_id_idx" ON "audit_entries" USING btree ("owner_id","id");--> statement-breakpoint
CREATE INDEX "audit_entries_owner_at_idx" ON "audit_entries" USING btree ("owner_id","at");--> statement-breakpoint
-- Audit entries are never changed or removed by berth; the database refuses it too, so a bug or a
-- stray statement cannot rewrite history. Someone able to drop this trigger is what the hash chain
-- and the checkpoints `berth audit verify` keeps on the client are for.
CREATE FUNCTION "audit_entries_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit entries are append-only';
END
$$;--> statement-breakpoint
CREATE TRIGGER "audit_entries_no_change" BEFORE UPDATE OR DELETE ON "audit_entries"
  FOR EACH ROW EXECUTE FUNCTION "audit_entries_append_only"();--> statement-breakpoint
CREATE TRIGGER "audit_entries_no_truncate" BEFORE TRUNCATE ON "audit_entries"
  FOR EACH STATEMENT EXECUTE FUNCTION "audit_entries_append_only"();
