import type { TenantDb, TenantScope, TenantTransaction } from '@mt-paas/db';

/**
 * Register your drizzle schema module to type `tx.query.*` (drizzle relational queries) in `req.tenantDb`,
 * `mt.tenantDb` and the `afterOnboard` scope — the Fastify request is one type for the whole app, so the
 * schema is registered once, by declaration merging:
 *
 * @example
 * import * as schema from './schema.js';
 * declare module '@mt-paas/framework' {
 *   interface FrameworkRegister {
 *     schema: typeof schema;
 *   }
 * }
 * const mt = await createServiceFramework({ configPath: 'mt-paas.yaml', migrationsFolder: './drizzle', schema });
 * app.get('/courses', (req) => req.tenantDb((tx) => tx.query.courses.findMany()));
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by the app's declaration merging
export interface FrameworkRegister {}

/** The registered schema ({@link FrameworkRegister}), or none. */
export type RegisteredSchema = FrameworkRegister extends {
  schema: infer TSchema extends Record<string, unknown>;
}
  ? TSchema
  : Record<string, never>;

/** A tenant transaction typed with the registered schema. */
export type FrameworkTransaction = TenantTransaction<RegisteredSchema>;
/** The tenant db typed with the registered schema. */
export type FrameworkTenantDb = TenantDb<RegisteredSchema>;
/** A tenant scope typed with the registered schema. */
export type FrameworkTenantScope = TenantScope<RegisteredSchema>;
