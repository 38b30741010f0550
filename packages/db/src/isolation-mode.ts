import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type IsolationMode, MtPaasError, type Tenant, type TenantId } from '@mt-paas/context';
import type { TenantDb, TenantScope } from './tenant-db.js';
import type { MigrateTenantsOptions, MigrateTenantsResult } from './tenant-migrations.js';
import {
  copyTableIn,
  copyTableOut,
  digestTable,
  listTenantTables,
  quoteName,
  type StorageTarget,
  withTenantSession,
} from './tenant-storage-session.js';

/** A table of a tenant export: name, columns (in COPY order), rows, file (relative) and sha256 of the file. */
export interface TenantTableExport {
  name: string;
  columns: string[];
  rows: number;
  file: string;
  sha256: string;
}

/** Options every mode's `createStorage` takes (a mode may take more, e.g. provisioning's job). */
export interface CreateStorageOptions {
  /** Called before each step (`placement`, `storage`) — recorded as job steps by the provisioner. */
  onStep?: (step: string) => Promise<void>;
}

/**
 * One isolation mode as one object: how a tenant's unit of work is scoped, how its storage is reached,
 * created, migrated, dropped, exported, imported and checksummed. `tenantDb.isolation` is the one of a
 * tenant db (row, schema or database); `@mt-paas/provisioning`'s docker mode implements the same
 * contract. `testIsolationModeStore` (`@mt-paas/db/testing`) is the suite every mode runs.
 */
export interface IsolationModeStore<TCreateOptions extends CreateStorageOptions = CreateStorageOptions> {
  readonly mode: IsolationMode;
  /** The tenant db behind this mode (`docker` uses a `database` one). */
  // biome-ignore lint/suspicious/noExplicitAny: a tenant db with any drizzle schema
  readonly tenantDb: TenantDb<any>;
  /** Scope a unit of work to one tenant (refuses writes while the tenant's placement is in a move window). */
  // biome-ignore lint/suspicious/noExplicitAny: a tenant db with any drizzle schema
  forTenant(tenantId: string): TenantScope<any>;
  /** Where the tenant's tables are, for a raw session as the app role. */
  connect(tenant: Pick<Tenant, 'id' | 'placement'>): Promise<StorageTarget>;
  /**
   * Creates (docker: places first) and migrates the tenant's storage. Idempotent. Returns the tenant as
   * stored (a placement may record its location) and the migration tags applied.
   */
  createStorage(tenant: Tenant, options?: TCreateOptions): Promise<{ tenant: Tenant; applied: string[] }>;
  /** Drops the tenant's storage (schema / database; its rows in row mode). Irreversible. */
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
  ): Promise<TenantTableExport[]>;
  /** Loads exported tables into the tenant's empty storage in one transaction, under its RLS policies. */
  importTables(
    tenant: Pick<Tenant, 'id' | 'placement'>,
    directory: string,
    tables: readonly TenantTableExport[],
  ): Promise<void>;
  /** Rows and sha256 of the given tables as `exportTables` would write them now (one snapshot). */
  checksumTables(
    tenant: Pick<Tenant, 'id' | 'placement'>,
    tables: readonly Pick<TenantTableExport, 'name' | 'columns'>[],
  ): Promise<Map<string, { rows: number; sha256: string }>>;
}

/** What a mode defines itself; {@link defineIsolationMode} adds export, import and checksums over `connect`. */
export type IsolationModeDefinition<TCreateOptions extends CreateStorageOptions = CreateStorageOptions> =
  Omit<IsolationModeStore<TCreateOptions>, 'exportTables' | 'importTables' | 'checksumTables'>;

/**
 * Completes a mode: export, import and checksums are the same in every mode — a session as the app role
 * on `connect(tenant)`, scoped like a unit of work, under the tables' row-level security.
 */
export function defineIsolationMode<TCreateOptions extends CreateStorageOptions = CreateStorageOptions>(
  definition: IsolationModeDefinition<TCreateOptions>,
): IsolationModeStore<TCreateOptions> {
  const { mode, connect } = definition;
  return {
    ...definition,
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
          const entries: TenantTableExport[] = [];
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
    async checksumTables(tenant, tables) {
      const target = await connect(tenant);
      return withTenantSession(
        target,
        tenant.id,
        async (client) => {
          const result = new Map<string, { rows: number; sha256: string }>();
          for (const table of tables) result.set(table.name, await digestTable(client, table));
          return result;
        },
        { readOnly: true, isolation: 'repeatable read' },
      );
    },
  };
}
