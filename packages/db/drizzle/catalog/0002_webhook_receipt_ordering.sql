ALTER TABLE "mt_paas"."webhook_receipts" ADD COLUMN "ordering_key" text;--> statement-breakpoint
ALTER TABLE "mt_paas"."webhook_receipts" ADD COLUMN "occurred_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "webhook_receipts_ordering_idx" ON "mt_paas"."webhook_receipts" USING btree ("tenant_id","ordering_key","occurred_at");