export type { EnsureAppRoleOptions, PlacementCredentialsOptions, RoleFlags } from './app-role.js';
export {
  DEFAULT_APP_ROLE,
  DEFAULT_PLACEMENT_APP_ROLE,
  ensureAppRole,
  placementAppPassword,
  placementAppUrl,
  placementPasswordFingerprint,
} from './app-role.js';
export type {
  Catalog,
  CatalogOptions,
  EntitlementsInput,
  SetStatusOptions,
  TenantInput,
  TenantPatch,
  TenantWriter,
} from './catalog.js';
export { CATALOG_MIGRATIONS_FOLDER, createCatalog, migrateCatalog } from './catalog.js';
export type { CatalogTables } from './catalog-schema.js';
export { createCatalogTables, DEFAULT_CATALOG_SCHEMA } from './catalog-schema.js';
export type { PoolGroup, PoolGroupOptions } from './database-pools.js';
export { createPoolGroup } from './database-pools.js';
export type {
  EmbeddedDatabaseOptions,
  PgDriverOptions,
  PgliteInstance,
  PgliteTransactionLike,
  SqlDriver,
  SqlRows,
  SqlSession,
} from './driver.js';
export { createPgDriver, createPgliteDriver, openEmbeddedDatabase } from './driver.js';
export type {
  CreateStorageOptions,
  IsolationModeDefinition,
  IsolationModeStore,
  TenantTableExport,
} from './isolation-mode.js';
export { defineIsolationMode } from './isolation-mode.js';
export type { MigrationFile } from './migrator.js';
export { readMigrationsFolder } from './migrator.js';
export type {
  DatabaseModeOptions,
  TenantDb,
  TenantDbMode,
  TenantDbOptions,
  TenantScope,
} from './tenant-db.js';
export { createTenantDb, createTenantStorage, dropTenantStorage, migrateTenants } from './tenant-db.js';
export type {
  MigrateTenantsOptions,
  MigrateTenantsResult,
  MigrationProgress,
} from './tenant-migrations.js';
export { SHARED_TARGET } from './tenant-migrations.js';
export type { StorageTarget } from './tenant-storage-session.js';
export type { TenantTable } from './tenant-table.js';
export {
  currentTenantSql,
  isTenantTable,
  TENANT_SETTING,
  tenantIdColumn,
  tenantPolicyName,
  tenantTable,
} from './tenant-table.js';
export type { Scope, TenantTransaction, UnitStats } from './unit-of-work.js';
export type { WriteFreeze } from './write-freeze.js';
export { WRITE_FREEZE_KEY, writeFreezeOf } from './write-freeze.js';
