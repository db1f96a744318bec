ALTER TABLE "deployments" ADD COLUMN "quota_replicas" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "deployments" ADD COLUMN "quota_host_ports" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "deployments" ADD COLUMN "quota_milli_cpus" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "deployments" ADD COLUMN "quota_memory_mb" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "deployments" ADD COLUMN "quota_disk_mb" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "deployments" ADD COLUMN "quota_volumes" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Deployments created before these columns: what their specs hold, worked out as demandOf does.
UPDATE "deployments" d SET
  "quota_replicas" = r.replicas,
  "quota_host_ports" = r.replicas * jsonb_array_length(coalesce(d.spec->'ports', '[]'::jsonb)),
  "quota_milli_cpus" = r.replicas * ceil((d.spec->'resources'->>'cpus')::numeric * 1000),
  "quota_memory_mb" = r.replicas * (d.spec->'resources'->>'memoryMb')::bigint,
  "quota_disk_mb" = r.replicas * (d.spec->'resources'->>'diskMb')::bigint + (
    SELECT coalesce(sum(coalesce((v->>'sizeMb')::bigint, 0)), 0)
      FROM jsonb_array_elements(coalesce(d.spec->'volumes', '[]'::jsonb)) v),
  "quota_volumes" = jsonb_array_length(coalesce(d.spec->'volumes', '[]'::jsonb))
FROM (SELECT id, (spec->>'replicas')::int AS replicas FROM "deployments") r
WHERE r.id = d.id AND d.spec ? 'resources';
