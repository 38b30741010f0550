/** Shared with other `@mt-paas/*` packages, not public API (`@mt-paas/provisioning/internal`). */
export type { TenantLock } from './tenant-lock.js';
export { createTenantLock } from './tenant-lock.js';
