CREATE TABLE "nft_ownership" (
	"chain_id" integer NOT NULL,
	"contract" text NOT NULL,
	"token_id" text NOT NULL,
	"owner" text NOT NULL,
	"block_number" bigint NOT NULL,
	"verified_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "nft_ownership_chain_id_contract_token_id_pk" PRIMARY KEY("chain_id","contract","token_id")
);
--> statement-breakpoint
CREATE TABLE "notifications" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"account_id" uuid NOT NULL,
	"type" text NOT NULL,
	"message" text NOT NULL,
	"deployment_id" uuid,
	"data" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "notifications" ADD CONSTRAINT "notifications_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "notifications_account_idx" ON "notifications" USING btree ("account_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "deployments_nft_key" ON "deployments" USING btree ((("spec"->'nft'->>'chainId')),(("spec"->'nft'->>'contract')),(("spec"->'nft'->>'tokenId'))) WHERE "deployments"."desired_state" <> 'deleted' and "deployments"."spec" ? 'nft';