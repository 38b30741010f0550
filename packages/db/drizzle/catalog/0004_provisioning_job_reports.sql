-- Status reports of provisioning jobs (@mt-paas/framework) in a column of their own, and partial indexes so
-- the sweeps and the status flush read only unfinished / unreported jobs as the table grows.
ALTER TABLE "mt_paas"."provisioning_jobs" ADD COLUMN "status_report" text;--> statement-breakpoint
CREATE INDEX "provisioning_jobs_open_idx" ON "mt_paas"."provisioning_jobs" USING btree ("action","created_at") WHERE "mt_paas"."provisioning_jobs"."state" in ('pending', 'running', 'failed');--> statement-breakpoint
CREATE INDEX "provisioning_jobs_unreported_idx" ON "mt_paas"."provisioning_jobs" USING btree ("action","updated_at") WHERE "mt_paas"."provisioning_jobs"."state" = 'succeeded' and "mt_paas"."provisioning_jobs"."status_report" is null;