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
export type { EmbeddedDatabaseOptions, PgDriverOptions, SqlDriver, SqlRows, SqlSession } from './driver.js';
export { createPgDriver, createPgliteDriver, openEmbeddedDatabase } from './driver.js';
export type { MigrationFile } from './migrator.js';
export { readMigrationsFolder } from './migrator.js';
export type { TenantTable } from './tenant-table.js';
export {
  currentTenantSql,
  isTenantTable,
  TENANT_SETTING,
  tenantIdColumn,
  tenantPolicyName,
  tenantTable,
} from './tenant-table.js';
