CREATE TABLE "usage_samples" (
	"deployment_id" uuid NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"cpu_percent" double precision NOT NULL,
	"memory_bytes" bigint NOT NULL,
	"rx_bytes" bigint NOT NULL,
	"tx_bytes" bigint NOT NULL,
	CONSTRAINT "usage_samples_deployment_id_at_pk" PRIMARY KEY("deployment_id","at")
);
