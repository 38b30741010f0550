import { APP_FIXTURE_MIGRATIONS, createAppRole, testBackend } from '@mt-paas/test-env';
import { ensureAppRole } from '../app-role.js';
import { type Catalog, createCatalog } from '../catalog.js';
import { createTenantDb, type TenantDb, type TenantDbOptions } from '../tenant-db.js';

/** The fixture app's drizzle-kit migrations (of ./app-schema.ts; kept in tooling/test-env, shared with provisioning). */
export const FIXTURE_MIGRATIONS = APP_FIXTURE_MIGRATIONS;

/** A migrated catalog, a fresh app role and a tenant db in one mode, on a test database. */
export interface ModeEnvironment {
  catalog: Catalog;
  tenantDb: TenantDb;
  appRole: string;
  appUrl: string;
  close(): Promise<void>;
}

/** Opens a {@link ModeEnvironment} on `databaseUrl` (an admin URL from test-env). */
export async function openModeEnvironment(
  mode: TenantDbOptions['mode'],
  databaseUrl: string,
  label: string,
  overrides: Partial<TenantDbOptions> = {},
): Promise<ModeEnvironment> {
  const catalog = await createCatalog({ connectionString: databaseUrl });
  await catalog.migrate();
  const role = await createAppRole(databaseUrl, { name: `db_${label}`, privileges: 'none' });
  await ensureAppRole(catalog.driver, { role: role.name, schemas: ['public'] });
  const tenantDb = await createTenantDb({
    mode,
    catalog,
    connectionString: role.url,
    adminConnectionString: databaseUrl,
    migrationsFolder: FIXTURE_MIGRATIONS,
    ...overrides,
    // tenants placed by URL on the (shared) test server: units connect there as this run's app role
    database: {
      databasePrefix: `mtp_t_${testBackend().runId}_${label}_`,
      placementAppRole: role.name,
      ...overrides.database,
    },
  });
  if (mode === 'row') await tenantDb.migrateTenants();
  return {
    catalog,
    tenantDb,
    appRole: role.name,
    appUrl: role.url,
    async close() {
      await tenantDb.close();
      await catalog.close();
    },
  };
}
