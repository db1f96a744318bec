ALTER TABLE "deployment_events" DROP CONSTRAINT "deployment_events_deployment_id_deployments_id_fk";
