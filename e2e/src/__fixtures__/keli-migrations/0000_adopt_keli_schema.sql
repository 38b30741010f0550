-- Adopts a KELI-Tutor tenant schema (user_mst, chat_his) as mt-paas tenant tables, and creates the same
-- tables in a new tenant's empty schema. Runs once per tenant schema, with search_path set to it.
-- The schema name is the tenant id (KELI style), so current_schema() fills tenant_id of existing rows.
CREATE TABLE IF NOT EXISTS "user_mst" (
	"user_id" serial NOT NULL,
	"email" varchar(200) NOT NULL,
	"user_nm" varchar(100),
	"role" varchar(20) DEFAULT 'student' NOT NULL,
	"reg_dtm" timestamp DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "chat_his" (
	"chat_id" serial NOT NULL,
	"user_id" integer NOT NULL,
	"question" text NOT NULL,
	"answer" text,
	"reg_dtm" timestamp DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "user_mst" ADD COLUMN IF NOT EXISTS "tenant_id" text;
--> statement-breakpoint
ALTER TABLE "chat_his" ADD COLUMN IF NOT EXISTS "tenant_id" text;
--> statement-breakpoint
UPDATE "user_mst" SET "tenant_id" = current_schema() WHERE "tenant_id" IS NULL;
--> statement-breakpoint
UPDATE "chat_his" SET "tenant_id" = current_schema() WHERE "tenant_id" IS NULL;
--> statement-breakpoint
ALTER TABLE "user_mst" ALTER COLUMN "tenant_id" SET DEFAULT nullif(current_setting('app.tenant_id', true), ''), ALTER COLUMN "tenant_id" SET NOT NULL;
--> statement-breakpoint
ALTER TABLE "chat_his" ALTER COLUMN "tenant_id" SET DEFAULT nullif(current_setting('app.tenant_id', true), ''), ALTER COLUMN "tenant_id" SET NOT NULL;
--> statement-breakpoint
ALTER TABLE "chat_his" DROP CONSTRAINT IF EXISTS "chat_his_user_id_fkey";
--> statement-breakpoint
ALTER TABLE "user_mst" DROP CONSTRAINT IF EXISTS "user_mst_email_key";
--> statement-breakpoint
ALTER TABLE "user_mst" DROP CONSTRAINT IF EXISTS "user_mst_pkey";
--> statement-breakpoint
ALTER TABLE "chat_his" DROP CONSTRAINT IF EXISTS "chat_his_pkey";
--> statement-breakpoint
ALTER TABLE "user_mst" ADD CONSTRAINT "user_mst_pkey" PRIMARY KEY ("tenant_id", "user_id");
--> statement-breakpoint
ALTER TABLE "user_mst" ADD CONSTRAINT "user_mst_email_unique" UNIQUE ("tenant_id", "email");
--> statement-breakpoint
ALTER TABLE "chat_his" ADD CONSTRAINT "chat_his_pkey" PRIMARY KEY ("tenant_id", "chat_id");
--> statement-breakpoint
ALTER TABLE "chat_his" ADD CONSTRAINT "chat_his_user_fk" FOREIGN KEY ("tenant_id", "user_id") REFERENCES "user_mst" ("tenant_id", "user_id");
--> statement-breakpoint
ALTER TABLE "user_mst" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE "chat_his" ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY "user_mst_tenant_isolation" ON "user_mst" AS PERMISSIVE FOR ALL TO public USING ("tenant_id" = nullif(current_setting('app.tenant_id', true), '')) WITH CHECK ("tenant_id" = nullif(current_setting('app.tenant_id', true), ''));
--> statement-breakpoint
CREATE POLICY "chat_his_tenant_isolation" ON "chat_his" AS PERMISSIVE FOR ALL TO public USING ("tenant_id" = nullif(current_setting('app.tenant_id', true), '')) WITH CHECK ("tenant_id" = nullif(current_setting('app.tenant_id', true), ''));
