-- Host-port blocks of docker-mode tenants (@mt-paas/provisioning's port allocator). Before this migration
-- the allocator created the table itself at runtime (with Postgres' default constraint names), so an
-- existing table is adopted: created only if missing, its constraints renamed to the names below.
CREATE TABLE IF NOT EXISTS "mt_paas"."port_blocks" (
	"block" integer PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"first_port" integer NOT NULL,
	"last_port" integer NOT NULL,
	"allocated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "port_blocks_tenant_id_unique" UNIQUE("tenant_id"),
	CONSTRAINT "port_blocks_block_check" CHECK ("mt_paas"."port_blocks"."block" >= 0)
);
--> statement-breakpoint
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = '"mt_paas"."port_blocks"'::regclass AND conname = 'port_blocks_tenant_id_key') THEN
    ALTER TABLE "mt_paas"."port_blocks" RENAME CONSTRAINT "port_blocks_tenant_id_key" TO "port_blocks_tenant_id_unique";
  END IF;
  IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = '"mt_paas"."port_blocks"'::regclass AND conname = 'port_blocks_tenant_id_fkey') THEN
    ALTER TABLE "mt_paas"."port_blocks" RENAME CONSTRAINT "port_blocks_tenant_id_fkey" TO "port_blocks_tenant_id_tenants_id_fk";
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = '"mt_paas"."port_blocks"'::regclass AND conname = 'port_blocks_tenant_id_tenants_id_fk') THEN
    ALTER TABLE "mt_paas"."port_blocks" ADD CONSTRAINT "port_blocks_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "mt_paas"."tenants"("id") ON DELETE cascade ON UPDATE no action;
  END IF;
END
$$;
