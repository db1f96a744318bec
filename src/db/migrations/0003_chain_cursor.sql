CREATE TABLE "chain_blocks" (
	"chain_id" integer NOT NULL,
	"consumer" text NOT NULL,
	"block_number" bigint NOT NULL,
	"block_hash" text NOT NULL,
	"parent_hash" text,
	CONSTRAINT "chain_blocks_chain_id_consumer_block_number_pk" PRIMARY KEY("chain_id","consumer","block_number")
);
--> statement-breakpoint
CREATE TABLE "chain_cursors" (
	"chain_id" integer NOT NULL,
	"consumer" text NOT NULL,
	"block_number" bigint NOT NULL,
	"block_hash" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "chain_cursors_chain_id_consumer_pk" PRIMARY KEY("chain_id","consumer")
);
