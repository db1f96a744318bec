CREATE TABLE "port_allocations" (
	"host_ip" text NOT NULL,
	"host_port" integer NOT NULL,
	"protocol" text NOT NULL,
	"deployment_id" uuid,
	"replica" integer,
	"container_port" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "port_allocations_host_ip_host_port_protocol_pk" PRIMARY KEY("host_ip","host_port","protocol")
);
--> statement-breakpoint
ALTER TABLE "port_allocations" ADD CONSTRAINT "port_allocations_deployment_id_deployments_id_fk" FOREIGN KEY ("deployment_id") REFERENCES "public"."deployments"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "port_allocations_deployment_key" ON "port_allocations" USING btree ("deployment_id","replica","container_port","protocol");