import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type IsolationMode, isMtPaasError, MtPaasError, type Tenant, type TenantId } from '@mt-paas/context';
import type {
  Catalog,
  MigrateTenantsOptions,
  MigrateTenantsResult,
  TenantDb,
  TenantScope,
} from '@mt-paas/db';
import { eq } from 'drizzle-orm';
import type { ArchiveManifest } from './archive.js';
import type { ProvisioningJob } from './jobs.js';
import {
  copyTableIn,
  copyTableOut,
  listTenantTables,
  quoteName,
  type StorageTarget,
  storageTarget,
  withTenantSession,
} from './tenant-storage-session.js';

/** A table of an archive: name, columns, rows, file and checksum. */
export type ArchiveTable = ArchiveManifest['tables'][number];

/** A step of a placement (docker) before the storage is created, and after it is dropped. */
export interface PlacementStrategy {
  readonly mode: IsolationMode;
  /** Called before the storage is created; returns the placement location (e.g. the container database URL). */
  prepare(tenant: Tenant, job: ProvisioningJob | undefined): Promise<string | undefined>;
  /** Called after the storage is dropped (containers, folders, port block). */
  release(tenant: Tenant): Promise<void>;
}

/**
 * One isolation mode as one object: how a tenant's unit of work is scoped, how its storage is reached,
 * created, migrated, dropped, exported and imported. The provisioner, export / import and move work only
 * through this contract; `testIsolationModeStore` (`@mt-paas/provisioning/testing`) is the suite every
 * mode runs.
 */
export interface IsolationModeStore {
  readonly mode: IsolationMode;
  /** The tenant db behind this mode (`docker` uses the `database` one). */
  readonly tenantDb: TenantDb;
  /** Scope a unit of work to one tenant. */
  forTenant(tenantId: string): TenantScope;
  /** Where the tenant's tables are, for a raw session as the app role (`withTenantSession`). */
  connect(tenant: Pick<Tenant, 'id' | 'placement'>): Promise<StorageTarget>;
  /**
   * Prepares the placement (docker: port block, deploy folder, containers), records its location in the
   * catalog, then creates and migrates the storage. Idempotent. Returns the tenant as stored and the tags applied.
   */
  createStorage(
    tenant: Tenant,
    options?: { job?: ProvisioningJob; onStep?: (step: string) => Promise<void> },
  ): Promise<{ tenant: Tenant; applied: string[] }>;
  /** Drops the storage (then releases the placement). Returns a note when the storage did not answer (docker). */
  dropStorage(tenant: Tenant): Promise<{ note?: string }>;
  /** Applies the app's tenant migrations to every target of this mode. */
  migrate(options?: MigrateTenantsOptions): Promise<MigrateTenantsResult>;
  /**
   * Writes the tenant's tables as COPY files into `directory/data/` in one snapshot (or, with `lockTables`,
   * under `LOCK … IN SHARE MODE` so that no write is in flight). Parents come before children.
   */
  exportTables(
    tenant: Pick<Tenant, 'id' | 'placement'>,
    directory: string,
    options?: { lockTables?: boolean },
  ): Promise<ArchiveTable[]>;
  /** Loads archive tables into the tenant's empty storage in one transaction, under its RLS policies. */
  importTables(
    tenant: Pick<Tenant, 'id' | 'placement'>,
    directory: string,
    tables: readonly ArchiveTable[],
  ): Promise<void>;
}

/** Options of {@link createIsolationModeStore}. */
export interface IsolationModeStoreOptions {
  mode: IsolationMode;
  catalog: Catalog;
  /** The tenant db of the mode (`database` for `docker`). */
  tenantDb: TenantDb;
  /** The docker placement (or another) run around storage creation and drop. */
  placement?: PlacementStrategy;
  /** The app role URL (row and schema modes: export / import sessions). */
  appConnectionString?: string;
  /** Row mode: schema of the shared tenant tables. @default 'public' */
  appSchema?: string;
}

/** Creates the store of one isolation mode. */
export function createIsolationModeStore(options: IsolationModeStoreOptions): IsolationModeStore {
  const { mode, catalog, tenantDb, placement } = options;
  const appSchema = options.appSchema ?? 'public';
  const connect = (tenant: Pick<Tenant, 'id' | 'placement'>) =>
    storageTarget(tenant, mode, tenantDb, options.appConnectionString, appSchema);
  return {
    mode,
    tenantDb,
    forTenant: (tenantId) => tenantDb.forTenant(tenantId),
    connect,
    async createStorage(tenant, createOptions = {}) {
      let stored = tenant;
      if (placement !== undefined) {
        await createOptions.onStep?.('placement');
        const location = await placement.prepare(tenant, createOptions.job);
        if (location !== tenant.placement.location) {
          stored = await catalog.tenants.update(tenant.id, {
            placement: { mode, ...(location === undefined ? {} : { location }) },
          });
        }
      }
      await createOptions.onStep?.('storage');
      const applied = await tenantDb.createTenantStorage(tenant.id);
      return { tenant: stored, applied };
    },
    async dropStorage(tenant) {
      let note: string | undefined;
      try {
        await tenantDb.dropTenantStorage(tenant.id);
      } catch (error) {
        // A container database that does not answer (never started, or already gone) lives in the
        // compose volume that the placement's release (`docker compose down -v`) removes.
        if (placement === undefined || !isMtPaasError(error, 'TENANT_STORAGE_UNAVAILABLE')) throw error;
        const migrations = catalog.tables.tenantMigrations;
        await catalog.driver.db.delete(migrations).where(eq(migrations.tenantId, tenant.id));
        note = `unreachable (${(error as Error).message.slice(0, 200)}); removed with the container volume`;
      }
      await placement?.release(tenant);
      return note === undefined ? {} : { note };
    },
    migrate: (migrateOptions) => tenantDb.migrateTenants(migrateOptions),
    async exportTables(tenant, directory, exportOptions = {}) {
      const target = await connect(tenant);
      await mkdir(join(directory, 'data'), { recursive: true, mode: 0o700 });
      const lockTables = exportOptions.lockTables === true;
      return withTenantSession(
        target,
        tenant.id,
        async (client) => {
          const tables = await listTenantTables(client, target.schema);
          if (lockTables && tables.length > 0) {
            // Waits for writers in flight and keeps new ones out until this export commits.
            await client.query(
              `LOCK TABLE ${tables.map((table) => quoteName(table.name)).join(', ')} IN SHARE MODE`,
            );
          }
          const entries: ArchiveTable[] = [];
          for (const table of tables) {
            const file = `data/${table.name}.copy`;
            const { rows, sha256 } = await copyTableOut(client, table, join(directory, file));
            entries.push({ name: table.name, columns: table.columns, rows, file, sha256 });
          }
          return entries;
        },
        lockTables ? {} : { isolation: 'repeatable read', readOnly: true },
      );
    },
    async importTables(tenant, directory, tables) {
      const target = await connect(tenant);
      const tenantId = tenant.id as TenantId;
      await withTenantSession(target, tenantId, async (client) => {
        const present = new Map(
          (await listTenantTables(client, target.schema)).map((table) => [table.name, table]),
        );
        for (const table of tables) {
          const existing = present.get(table.name);
          if (existing === undefined) {
            throw new MtPaasError(
              'CONFLICT',
              `The archive has table "${table.name}", which the target storage does not: migrate the service to the archive's version first.`,
            );
          }
          const missing = table.columns.filter((column) => !existing.columns.includes(column));
          if (missing.length > 0) {
            throw new MtPaasError(
              'CONFLICT',
              `Table "${table.name}" of the target has no column ${missing.join(', ')}.`,
            );
          }
        }
        for (const table of present.values()) {
          const { rows } = await client.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM ${quoteName(table.name)}`,
          );
          if ((rows[0]?.n ?? 0) > 0) {
            throw new MtPaasError(
              'CONFLICT',
              `Tenant "${tenantId}" already has rows in "${table.name}" of its ${mode} storage; import only into empty storage.`,
            );
          }
        }
        for (const table of tables) {
          const inserted = await copyTableIn(
            client,
            { name: table.name, columns: table.columns },
            join(directory, table.file),
          );
          if (inserted !== table.rows) {
            throw new MtPaasError(
              'INTERNAL',
              `Table "${table.name}": ${inserted} rows loaded, the archive has ${table.rows}.`,
            );
          }
        }
      });
    },
  };
}
