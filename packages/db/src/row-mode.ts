import { MtPaasError, type TenantId } from '@mt-paas/context';
import type pg from 'pg';
import { hardenSchema } from './app-role.js';
import { applyMigrations, type MigrationFile } from './migrator.js';
import { quoteLiteral } from './sql-text.js';
import {
  type ModeContext,
  type ModeDriver,
  migrateSingleTarget,
  recordApplied,
  SHARED_TARGET,
  unqualifyPublic,
} from './tenant-migrations.js';
import type { StorageTarget } from './tenant-storage-session.js';
import type { Scope } from './unit-of-work.js';

/**
 * Row mode: every tenant's rows in the shared tables of `appSchema`; a unit of work sets
 * `app.tenant_id` for its transaction and the tables' row-level security does the rest.
 */
export function rowMode(context: ModeContext): ModeDriver {
  const migrate = (migrations: MigrationFile[]) => migrateShared(context, migrations);
  return {
    mode: 'row',
    unit: async (tenant) => sharedDatabaseUnit(context, { tenantId: tenant.id }),
    connect: async () => sharedDatabaseTarget(context, 'row', context.appSchema),
    createStorage: (_tenant, migrations) => migrate(migrations),
    dropStorage: (tenant) => deleteTenantRows(context, tenant.id),
    migrate: (migrations, options) => migrateSingleTarget(options, () => migrate(migrations)),
  };
}

/** A unit of work on the shared app database (row and schema modes): the app pool, or the embedded PGlite. */
export function sharedDatabaseUnit(
  context: ModeContext,
  scope: Scope,
): { scope: Scope; client?: Promise<pg.PoolClient> } {
  if (context.embedded !== undefined) {
    return { scope: { ...scope, role: context.embedded.role, sessionUser: context.embedded.sessionUser } };
  }
  return { scope, client: context.pool!.connect() };
}

/** The app role URL and the tenant's schema on the shared database (row and schema modes). */
export function sharedDatabaseTarget(
  context: ModeContext,
  mode: 'row' | 'schema',
  schema: string,
): StorageTarget {
  if (context.appUrl === undefined) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `Export, import and move in ${mode} mode need the app role's URL: create the tenant db with connectionString (a pool or the embedded database is not enough).`,
    );
  }
  return { mode, url: context.appUrl, schema };
}

async function migrateShared(context: ModeContext, migrations: MigrationFile[]): Promise<string[]> {
  const applied = await context.admin.transaction((session) =>
    applyMigrations(session, {
      migrations,
      ledgerSchema: context.appSchema,
      searchPath: context.appSchema,
      rewrite: context.appSchema === 'public' ? undefined : unqualifyPublic,
      lockKey: `row:${context.appSchema}`,
      after: (inner) => hardenSchema(inner, context.appSchema, context.appRole),
    }),
  );
  await recordApplied(context, SHARED_TARGET, migrations);
  return applied;
}

/** Deletes the tenant's rows from every shared table with a `tenant_id` column, children first. */
async function deleteTenantRows(context: ModeContext, tenantId: TenantId): Promise<void> {
  await context.admin.transaction(async (session) => {
    const { rows } = await session.query<{ name: string }>(
      `SELECT format('%I.%I', c.relnamespace::regnamespace::text, c.relname) AS name
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')`,
      [context.appSchema],
    );
    await session.exec(`SELECT set_config('app.tenant_id', ${quoteLiteral(tenantId)}, true)`);
    // Children before parents: a DELETE blocked by a foreign key (23503) is retried in a later pass.
    let pending = rows.map((row) => row.name);
    while (pending.length > 0) {
      const blocked: string[] = [];
      let lastError: unknown;
      for (const name of pending) {
        await session.exec('SAVEPOINT mt_paas_drop');
        try {
          await session.query(`DELETE FROM ${name} WHERE tenant_id = $1`, [tenantId]);
          await session.exec('RELEASE SAVEPOINT mt_paas_drop');
        } catch (error) {
          await session.exec('ROLLBACK TO SAVEPOINT mt_paas_drop');
          if ((error as { code?: string }).code !== '23503') throw error;
          blocked.push(name);
          lastError = error;
        }
      }
      if (blocked.length === pending.length) throw lastError;
      pending = blocked;
    }
  });
}
