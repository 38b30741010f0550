CREATE TABLE "mt_paas"."audit_log" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "mt_paas"."audit_log_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"at" timestamp with time zone NOT NULL,
	"type" text NOT NULL,
	"severity" text NOT NULL,
	"tenant_id" text,
	"target_tenant_id" text,
	"actor" jsonb,
	"request_id" text,
	"details" jsonb,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "audit_log_severity_check" CHECK ("mt_paas"."audit_log"."severity" in ('low', 'medium', 'high', 'critical'))
);
--> statement-breakpoint
CREATE TABLE "mt_paas"."entitlements" (
	"tenant_id" text PRIMARY KEY NOT NULL,
	"plan" text NOT NULL,
	"features" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"limits" jsonb DEFAULT '{"rpm":null,"quotas":{}}'::jsonb NOT NULL,
	"expires_at" timestamp with time zone,
	"grace_until" timestamp with time zone,
	"source" text DEFAULT 'plan' NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "mt_paas"."outbox" (
	"event_id" text PRIMARY KEY NOT NULL,
	"tenant_id" text,
	"type" text NOT NULL,
	"payload" jsonb NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_error" text,
	"delivered_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "mt_paas"."provisioning_jobs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" text NOT NULL,
	"action" text NOT NULL,
	"step" text,
	"state" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"error" text,
	"details" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "provisioning_jobs_state_check" CHECK ("mt_paas"."provisioning_jobs"."state" in ('pending', 'running', 'succeeded', 'failed', 'cancelled'))
);
--> statement-breakpoint
CREATE TABLE "mt_paas"."tenant_domains" (
	"domain" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"kind" text DEFAULT 'custom' NOT NULL,
	"verified_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "tenant_domains_kind_check" CHECK ("mt_paas"."tenant_domains"."kind" in ('subdomain', 'custom')),
	CONSTRAINT "tenant_domains_lower_check" CHECK ("mt_paas"."tenant_domains"."domain" = lower("mt_paas"."tenant_domains"."domain"))
);
--> statement-breakpoint
CREATE TABLE "mt_paas"."tenant_migrations" (
	"tenant_id" text NOT NULL,
	"version" text NOT NULL,
	"hash" text NOT NULL,
	"applied_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "tenant_migrations_pkey" PRIMARY KEY("tenant_id","version")
);
--> statement-breakpoint
CREATE TABLE "mt_paas"."tenants" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"status" text DEFAULT 'provisioning' NOT NULL,
	"plan" text DEFAULT 'free' NOT NULL,
	"admin_email" text,
	"admin_name" text,
	"institution" text,
	"contact" text,
	"description" text,
	"application_id" text,
	"application_kind" text,
	"placement_mode" text DEFAULT 'row' NOT NULL,
	"placement_location" text,
	"block_reason" text,
	"block_message" text,
	"block_at" timestamp with time zone,
	"block_until" timestamp with time zone,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"suspended_at" timestamp with time zone,
	"suspended_reason" text,
	"blocked_at" timestamp with time zone,
	"blocked_reason" text,
	"deleted_at" timestamp with time zone,
	"deleted_reason" text,
	"purged_at" timestamp with time zone,
	"purged_reason" text,
	CONSTRAINT "tenants_status_check" CHECK ("mt_paas"."tenants"."status" in ('provisioning', 'active', 'grace', 'suspended', 'blocked', 'deleted', 'purged')),
	CONSTRAINT "tenants_application_kind_check" CHECK ("mt_paas"."tenants"."application_kind" is null or "mt_paas"."tenants"."application_kind" in ('demo', 'service')),
	CONSTRAINT "tenants_placement_mode_check" CHECK ("mt_paas"."tenants"."placement_mode" in ('row', 'schema', 'database', 'docker'))
);
--> statement-breakpoint
CREATE TABLE "mt_paas"."usage_ledger" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "mt_paas"."usage_ledger_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"tenant_id" text NOT NULL,
	"meter" text NOT NULL,
	"period_start" timestamp with time zone,
	"quantity" double precision NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"idempotency_key" text NOT NULL,
	"attributes" jsonb,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "mt_paas"."webhook_receipts" (
	"webhook_id" text PRIMARY KEY NOT NULL,
	"type" text,
	"tenant_id" text,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"result" text,
	"details" jsonb
);
--> statement-breakpoint
ALTER TABLE "mt_paas"."entitlements" ADD CONSTRAINT "entitlements_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "mt_paas"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "mt_paas"."tenant_domains" ADD CONSTRAINT "tenant_domains_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "mt_paas"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "audit_log_tenant_idx" ON "mt_paas"."audit_log" USING btree ("tenant_id","at");--> statement-breakpoint
CREATE INDEX "audit_log_type_idx" ON "mt_paas"."audit_log" USING btree ("type","at");--> statement-breakpoint
CREATE INDEX "outbox_pending_idx" ON "mt_paas"."outbox" USING btree ("next_attempt_at") WHERE "mt_paas"."outbox"."delivered_at" is null;--> statement-breakpoint
CREATE INDEX "provisioning_jobs_tenant_idx" ON "mt_paas"."provisioning_jobs" USING btree ("tenant_id","created_at");--> statement-breakpoint
CREATE INDEX "tenant_domains_tenant_idx" ON "mt_paas"."tenant_domains" USING btree ("tenant_id");--> statement-breakpoint
CREATE INDEX "tenants_status_idx" ON "mt_paas"."tenants" USING btree ("status");--> statement-breakpoint
CREATE INDEX "tenants_application_idx" ON "mt_paas"."tenants" USING btree ("application_id");--> statement-breakpoint
CREATE UNIQUE INDEX "usage_ledger_idempotency_idx" ON "mt_paas"."usage_ledger" USING btree ("tenant_id","idempotency_key");--> statement-breakpoint
CREATE INDEX "usage_ledger_meter_idx" ON "mt_paas"."usage_ledger" USING btree ("tenant_id","meter","period_start");