import type { Tenant } from '@mt-paas/context';
import { hardenSchema } from './app-role.js';
import { applyMigrations, type MigrationFile } from './migrator.js';
import { sharedDatabaseTarget, sharedDatabaseUnit } from './row-mode.js';
import { quoteIdentifier } from './sql-text.js';
import {
  type ModeContext,
  type ModeDriver,
  migrateEachTenant,
  recordApplied,
  unqualifyPublic,
} from './tenant-migrations.js';

/**
 * Schema mode: a schema per tenant on the shared database; a unit of work sets `app.tenant_id` and
 * `search_path` (the quoted schema) for its transaction; the tables carry a pin policy for the tenant.
 */
export function schemaMode(context: ModeContext): ModeDriver {
  const migrateOne = (tenant: Tenant, migrations: MigrationFile[]) =>
    migrateSchema(context, tenant, migrations);
  return {
    mode: 'schema',
    unit: async (tenant) =>
      sharedDatabaseUnit(context, { tenantId: tenant.id, schema: context.schemaFor(tenant) }),
    connect: async (tenant) => sharedDatabaseTarget(context, 'schema', context.schemaFor(tenant)),
    createStorage: (tenant, migrations) => migrateOne(tenant, migrations),
    async dropStorage(tenant) {
      await context.admin.exec(`DROP SCHEMA IF EXISTS ${quoteIdentifier(context.schemaFor(tenant))} CASCADE`);
    },
    migrate: (migrations, options) =>
      migrateEachTenant(context, options, (tenant) => migrateOne(tenant, migrations)),
  };
}

async function migrateSchema(context: ModeContext, tenant: Tenant, migrations: MigrationFile[]) {
  const schema = context.schemaFor(tenant);
  const applied = await context.admin.transaction(async (session) => {
    await session.exec(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`);
    return applyMigrations(session, {
      migrations,
      ledgerSchema: schema,
      searchPath: schema,
      rewrite: unqualifyPublic,
      lockKey: `schema:${schema}`,
      after: (inner) => hardenSchema(inner, schema, context.appRole, tenant.id),
    });
  });
  await recordApplied(context, tenant.id, migrations);
  return applied;
}
