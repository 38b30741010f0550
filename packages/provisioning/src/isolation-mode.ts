import { type IsolationMode, isMtPaasError, type Tenant } from '@mt-paas/context';
import {
  type Catalog,
  type IsolationModeStore as DbIsolationModeStore,
  defineIsolationMode,
  type StorageTarget,
  type TenantDb,
  type TenantTableExport,
} from '@mt-paas/db';
import { eq } from 'drizzle-orm';
import type { ProvisioningJob } from './jobs.js';

/** A table of an archive: name, columns, rows, file and checksum. */
export type ArchiveTable = TenantTableExport;

/** A step of a placement (docker) before the storage is created, and after it is dropped. */
export interface PlacementStrategy {
  readonly mode: IsolationMode;
  /** Called before the storage is created; returns the placement location (e.g. the container database URL). */
  prepare(tenant: Tenant, job: ProvisioningJob | undefined): Promise<string | undefined>;
  /** Called after the storage is dropped (containers, folders, port block). */
  release(tenant: Tenant): Promise<void>;
}

/**
 * One isolation mode as one object — `@mt-paas/db`'s mode contract, whose `createStorage` also takes the
 * provisioning job (a placement records its steps on it). Row, schema and database are the tenant dbs'
 * own (`tenantDb.isolation`); docker is the database one with a placement around storage creation and
 * drop. `testIsolationModeStore` (`@mt-paas/db/testing`) is the suite every mode runs.
 */
export type IsolationModeStore = DbIsolationModeStore<{
  job?: ProvisioningJob;
  onStep?: (step: string) => Promise<void>;
}>;

/** Options of {@link createIsolationModeStore}. */
export interface IsolationModeStoreOptions {
  mode: IsolationMode;
  catalog: Catalog;
  /** The tenant db of the mode (`database` for `docker`). */
  tenantDb: TenantDb;
  /** The docker placement (or another) run around storage creation and drop. */
  placement?: PlacementStrategy;
  /**
   * The app role URL for export / import sessions in row and schema modes.
   * @default the tenant db's `connectionString`
   */
  appConnectionString?: string;
  /** Row mode: schema of the shared tenant tables. @default the tenant db's `appSchema` */
  appSchema?: string;
}

/**
 * The store of one isolation mode: the tenant db's own mode (`tenantDb.isolation`), with a placement
 * around it when one is given (docker mode implements the same contract this way).
 */
export function createIsolationModeStore(options: IsolationModeStoreOptions): IsolationModeStore {
  const { mode, catalog, tenantDb, placement } = options;
  const base = tenantDb.isolation;
  /** The tenant db's target, with this store's app URL / row schema when given (row and schema modes). */
  const connect = async (tenant: Pick<Tenant, 'id' | 'placement'>): Promise<StorageTarget> => {
    if (mode === 'docker') return { ...(await base.connect(tenant)), mode: 'docker' };
    if (mode === 'database') return base.connect(tenant);
    const given = options.appConnectionString;
    const target = await base.connect(tenant).catch(async (error: unknown) => {
      // the tenant db was made with a pool (no URL of its own): the URL given here is enough
      if (given === undefined || !isMtPaasError(error, 'CONFIG_INVALID')) throw error;
      return {
        mode,
        url: given,
        schema: mode === 'schema' ? await tenantDb.schemaOf(tenant.id) : 'public',
      } satisfies StorageTarget;
    });
    return {
      mode,
      url: given ?? target.url,
      schema: mode === 'row' ? (options.appSchema ?? target.schema) : target.schema,
    };
  };
  return defineIsolationMode({
    mode,
    tenantDb,
    forTenant: (tenantId) => base.forTenant(tenantId),
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
      const { applied } = await base.createStorage(stored, {
        ...(createOptions.onStep === undefined ? {} : { onStep: createOptions.onStep }),
      });
      return { tenant: stored, applied };
    },
    async dropStorage(tenant) {
      let note: string | undefined;
      try {
        await base.dropStorage(tenant);
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
    migrate: (migrateOptions) => base.migrate(migrateOptions),
  });
}
