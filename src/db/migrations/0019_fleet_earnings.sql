ALTER TABLE "ledger_postings" ADD COLUMN "node_id" uuid;--> statement-breakpoint
CREATE INDEX "ledger_postings_node_idx" ON "ledger_postings" USING btree ("node_id");