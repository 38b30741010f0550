import type { Tenant } from '@mt-paas/context';
import { LRUCache } from 'lru-cache';
import type pg from 'pg';
import { ensureLoginRole, hardenSchema, refuseBypass, roleFlags } from './app-role.js';
import { createPgDriver, type SqlDriver, type SqlSession } from './driver.js';
import { applyMigrations, type MigrationFile } from './migrator.js';
import { quoteIdentifier } from './sql-text.js';
import { mapStorageError } from './storage-errors.js';
import {
  type ModeContext,
  type ModeDriver,
  migrateEachTenant,
  recordApplied,
  withServerAdmin,
} from './tenant-migrations.js';

/**
 * Database mode: a database per tenant (on the main server, or on the tenant's own server when its
 * placement names a URL); a unit of work runs on that database's pool, scoped by `app.tenant_id`.
 * The app role of each database URL is checked (no SUPERUSER / BYPASSRLS) before its first unit.
 */
export function databaseMode(context: ModeContext): ModeDriver {
  /** Tenant database URLs whose app role passed the bypass check. */
  const checkedUrls = new LRUCache<string, Promise<void>>({ max: 10_000 });
  const pools = context.pools!;
  const migrateOne = (tenant: Tenant, migrations: MigrationFile[]) =>
    migrateDatabase(context, tenant, migrations);
  return {
    mode: 'database',
    async unit(tenant) {
      const url = context.appDatabaseUrlFor(tenant);
      let checked = checkedUrls.get(url);
      if (checked === undefined) {
        checked = (async () => {
          const client = await pools.connect(tenant.id, url);
          try {
            refuseBypass(await roleFlags(pgSession(client)), userOf(url) ?? context.appRole, 'database');
          } finally {
            client.release();
          }
        })();
        checkedUrls.set(url, checked);
        checked.catch(() => checkedUrls.delete(url));
      }
      try {
        await checked;
      } catch (error) {
        throw mapStorageError(error, 'app role check');
      }
      return { scope: { tenantId: tenant.id }, client: pools.connect(tenant.id, url) };
    },
    connect: async (tenant) => ({
      mode: 'database',
      url: context.appDatabaseUrlFor(tenant),
      schema: 'public',
    }),
    createStorage: (tenant, migrations) => migrateOne(tenant, migrations),
    async dropStorage(tenant) {
      await context.evictDatabasePool(tenant.id);
      await withServerAdmin(context, tenant, (admin) =>
        admin.exec(
          `DROP DATABASE IF EXISTS ${quoteIdentifier(context.databaseNameFor(tenant))} WITH (FORCE)`,
        ),
      );
    },
    migrate: (migrations, options) =>
      migrateEachTenant(context, options, (tenant) => migrateOne(tenant, migrations)),
  };
}

async function ensureDatabase(context: ModeContext, admin: SqlDriver, name: string): Promise<void> {
  const { rows } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  if (rows.length === 0) {
    try {
      await admin.exec(`CREATE DATABASE ${quoteIdentifier(name)}`);
    } catch (error) {
      // Another instance created it meanwhile (42P04 duplicate_database, or 23505 on pg_database).
      const code = (error as { code?: string }).code;
      if (code !== '42P04' && code !== '23505') throw error;
    }
  }
  if (admin === context.admin) {
    await admin.exec(
      `GRANT CONNECT ON DATABASE ${quoteIdentifier(name)} TO ${quoteIdentifier(context.appRole)}`,
    );
  }
}

async function migrateDatabase(context: ModeContext, tenant: Tenant, migrations: MigrationFile[]) {
  const placementApp = context.placementAppRoleFor?.(tenant);
  await withServerAdmin(context, tenant, (admin) =>
    ensureDatabase(context, admin, context.databaseNameFor(tenant)),
  );
  const driver = createPgDriver({ connectionString: context.adminDatabaseUrlFor(tenant), max: 1 });
  try {
    // On the tenant's own server the app connects as the placement app role: created there (unless the
    // server's init script did) before the migrations grant it the tenant tables.
    if (placementApp !== undefined) await ensureLoginRole(driver, placementApp.role, placementApp.password);
    const applied = await driver.transaction((session: SqlSession) =>
      applyMigrations(session, {
        migrations,
        ledgerSchema: 'public',
        searchPath: 'public',
        lockKey: `database:${tenant.id}`,
        // On the tenant's own server (placement URL) the grants go to the placement app role; the main
        // app role does not exist there.
        after: (inner) =>
          hardenSchema(
            inner,
            'public',
            placementApp === undefined ? context.appRole : placementApp.role,
            tenant.id,
          ),
      }),
    );
    await recordApplied(context, tenant.id, migrations);
    return applied;
  } finally {
    await driver.close();
  }
}

function pgSession(client: pg.ClientBase) {
  return {
    query: async <R>(text: string, params?: readonly unknown[]) => ({
      rows: (await client.query(text, params as unknown[] | undefined)).rows as R[],
    }),
  };
}

function userOf(url: string): string | undefined {
  try {
    const user = decodeURIComponent(new URL(url).username);
    return user === '' ? undefined : user;
  } catch {
    return undefined;
  }
}
