CREATE TABLE "billing_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"account_id" uuid,
	"deployment_id" uuid,
	"type" text NOT NULL,
	"message" text NOT NULL,
	"data" jsonb,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "chain_payments" (
	"id" uuid PRIMARY KEY NOT NULL,
	"chain_id" integer NOT NULL,
	"tx_hash" text NOT NULL,
	"log_index" integer NOT NULL,
	"token_address" text NOT NULL,
	"token_symbol" text NOT NULL,
	"payer" text NOT NULL,
	"amount" numeric(78, 0) NOT NULL,
	"block_number" bigint,
	"block_hash" text,
	"status" text NOT NULL,
	"account_id" uuid NOT NULL,
	"order_id" uuid,
	"rate_e18" numeric(78, 0),
	"credited_micro_usd" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"credited_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "deployment_billing" (
	"deployment_id" uuid PRIMARY KEY NOT NULL,
	"account_id" uuid NOT NULL,
	"billed_through" timestamp with time zone,
	"paid_until" timestamp with time zone,
	"low_balance_warned" boolean DEFAULT false NOT NULL,
	"funds_exhausted_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "ledger_journals" (
	"id" uuid PRIMARY KEY NOT NULL,
	"cause" text NOT NULL,
	"account_id" uuid,
	"deployment_id" uuid,
	"order_id" uuid,
	"payment_id" uuid,
	"memo" text NOT NULL,
	"chain_id" integer,
	"token_symbol" text,
	"token_amount" numeric(78, 0),
	"dedupe_key" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "ledger_postings" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"journal_id" uuid NOT NULL,
	"book" text NOT NULL,
	"account_id" uuid,
	"deployment_id" uuid,
	"amount_micro_usd" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "orders" (
	"id" uuid PRIMARY KEY NOT NULL,
	"account_id" uuid NOT NULL,
	"deployment_id" uuid,
	"hours" integer,
	"value_micro_usd" bigint NOT NULL,
	"chain_id" integer NOT NULL,
	"token_symbol" text NOT NULL,
	"token_address" text NOT NULL,
	"decimals" integer NOT NULL,
	"amount" numeric(78, 0) NOT NULL,
	"pay_to" text NOT NULL,
	"rate_e18" numeric(78, 0) NOT NULL,
	"sources" jsonb NOT NULL,
	"status" text DEFAULT 'init' NOT NULL,
	"received" numeric(78, 0) DEFAULT '0' NOT NULL,
	"credited_micro_usd" bigint DEFAULT 0 NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "billing_events" ADD CONSTRAINT "billing_events_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "chain_payments" ADD CONSTRAINT "chain_payments_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "chain_payments" ADD CONSTRAINT "chain_payments_order_id_orders_id_fk" FOREIGN KEY ("order_id") REFERENCES "public"."orders"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deployment_billing" ADD CONSTRAINT "deployment_billing_deployment_id_deployments_id_fk" FOREIGN KEY ("deployment_id") REFERENCES "public"."deployments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deployment_billing" ADD CONSTRAINT "deployment_billing_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ledger_journals" ADD CONSTRAINT "ledger_journals_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ledger_journals" ADD CONSTRAINT "ledger_journals_deployment_id_deployments_id_fk" FOREIGN KEY ("deployment_id") REFERENCES "public"."deployments"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ledger_journals" ADD CONSTRAINT "ledger_journals_order_id_orders_id_fk" FOREIGN KEY ("order_id") REFERENCES "public"."orders"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ledger_journals" ADD CONSTRAINT "ledger_journals_payment_id_chain_payments_id_fk" FOREIGN KEY ("payment_id") REFERENCES "public"."chain_payments"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ledger_postings" ADD CONSTRAINT "ledger_postings_journal_id_ledger_journals_id_fk" FOREIGN KEY ("journal_id") REFERENCES "public"."ledger_journals"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ledger_postings" ADD CONSTRAINT "ledger_postings_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "orders" ADD CONSTRAINT "orders_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "orders" ADD CONSTRAINT "orders_deployment_id_deployments_id_fk" FOREIGN KEY ("deployment_id") REFERENCES "public"."deployments"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "billing_events_account_idx" ON "billing_events" USING btree ("account_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "chain_payments_transfer_key" ON "chain_payments" USING btree ("chain_id","tx_hash","log_index");--> statement-breakpoint
CREATE INDEX "chain_payments_order_idx" ON "chain_payments" USING btree ("order_id");--> statement-breakpoint
CREATE INDEX "chain_payments_block_idx" ON "chain_payments" USING btree ("chain_id","block_number");--> statement-breakpoint
CREATE UNIQUE INDEX "ledger_journals_dedupe_key" ON "ledger_journals" USING btree ("dedupe_key");--> statement-breakpoint
CREATE INDEX "ledger_journals_account_idx" ON "ledger_journals" USING btree ("account_id","created_at");--> statement-breakpoint
CREATE INDEX "ledger_postings_account_idx" ON "ledger_postings" USING btree ("account_id","book");--> statement-breakpoint
CREATE INDEX "ledger_postings_deployment_idx" ON "ledger_postings" USING btree ("deployment_id","book");--> statement-breakpoint
CREATE INDEX "orders_account_idx" ON "orders" USING btree ("account_id","created_at");