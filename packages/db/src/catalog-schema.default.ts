/** Input of drizzle-kit (`pnpm generate:catalog`): the catalog tables in the default schema `mt_paas`. */
import { createCatalogTables } from './catalog-schema.js';

export const mtPaas = createCatalogTables();
export const {
  tenants,
  tenantDomains,
  entitlements,
  usageLedger,
  auditLog,
  outbox,
  webhookReceipts,
  provisioningJobs,
  tenantMigrations,
  portBlocks,
} = mtPaas;
