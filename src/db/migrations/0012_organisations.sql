CREATE TABLE "org_members" (
	"org_id" uuid NOT NULL,
	"address" text NOT NULL,
	"role" text NOT NULL,
	"added_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "org_members_org_id_address_pk" PRIMARY KEY("org_id","address"),
	CONSTRAINT "org_members_role_check" CHECK ("org_members"."role" in ('owner', 'admin', 'deployer', 'billing', 'viewer'))
);
--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "kind" text DEFAULT 'personal' NOT NULL;--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "name" text;--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "slug" text;--> statement-breakpoint
ALTER TABLE "org_members" ADD CONSTRAINT "org_members_org_id_accounts_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "org_members_address_idx" ON "org_members" USING btree ("address");--> statement-breakpoint
CREATE UNIQUE INDEX "accounts_slug_key" ON "accounts" USING btree ("slug") WHERE "accounts"."slug" is not null;--> statement-breakpoint
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_kind_check" CHECK ("accounts"."kind" in ('personal', 'org'));--> statement-breakpoint
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_org_shape_check" CHECK (("accounts"."kind" = 'org') = ("accounts"."slug" is not null and "accounts"."name" is not null and "accounts"."address" is null and "accounts"."external_subject" is null));