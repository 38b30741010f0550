-- audit_log is append-only: UPDATE, DELETE and TRUNCATE are refused for every role.
CREATE OR REPLACE FUNCTION "mt_paas"."audit_log_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'mt_paas audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
--> statement-breakpoint
CREATE TRIGGER "audit_log_no_update_delete" BEFORE UPDATE OR DELETE ON "mt_paas"."audit_log"
  FOR EACH ROW EXECUTE FUNCTION "mt_paas"."audit_log_append_only"();
--> statement-breakpoint
CREATE TRIGGER "audit_log_no_truncate" BEFORE TRUNCATE ON "mt_paas"."audit_log"
  FOR EACH STATEMENT EXECUTE FUNCTION "mt_paas"."audit_log_append_only"();
