/**
 * The contract suite of `@mt-paas/provisioning`: every isolation mode (`IsolationModeStore`) runs the same
 * checks, the way unstorage runs one suite over every driver. Framework-neutral: it returns a report.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TenantId } from '@mt-paas/context';
import type { Catalog } from '@mt-paas/db';
import { type IsolationKitOptions, type IsolationReport, testIsolationMode } from '@mt-paas/db/testing';
import { sql } from 'drizzle-orm';
import type { IsolationModeStore } from './isolation-mode.js';

/** Options of {@link testIsolationModeStore}. */
export interface IsolationModeContractOptions {
  store: IsolationModeStore;
  catalog: Catalog;
  /** A `tenantTable()` of the app's migrations, with the row shape and update of the db isolation kit. */
  table: IsolationKitOptions['table'];
  row: IsolationKitOptions['row'];
  update: IsolationKitOptions['update'];
  /** @default 6 */
  tenants?: number;
  /** @default `c_<mode initial>_` */
  tenantPrefix?: string;
}

/**
 * Runs the contract against one mode's store:
 * 1. `createStorage` for each tenant, then the db isolation kit (`testIsolationMode`): concurrent tenants
 *    see and write only their own rows through `store.tenantDb`;
 * 2. `exportTables` → `dropStorage` (afterwards the tenant sees nothing) → `createStorage` → `importTables`
 *    gives back byte-identical tables (same rows, same sha256);
 * 3. `createStorage` again is a no-op (idempotent).
 */
export async function testIsolationModeStore(
  options: IsolationModeContractOptions,
): Promise<IsolationReport> {
  const { store, catalog } = options;
  const prefix = options.tenantPrefix ?? `c_${store.mode[0]}_`;
  const report = await testIsolationMode({
    tenantDb: store.tenantDb,
    table: options.table,
    row: options.row,
    update: options.update,
    tenants: options.tenants ?? 6,
    rowsPerTenant: 3,
    rounds: 2,
    tenantPrefix: prefix,
    prepareTenant: async (tenantId: TenantId) => {
      const tenant = await catalog.tenants.upsert({
        id: tenantId,
        name: tenantId,
        status: 'active',
        placement: { mode: store.mode },
      });
      await store.createStorage(tenant);
    },
  });
  const violation = (step: string, tenantId: string, message: string) => {
    report.violations.push({ step, tenantId, message });
  };
  const tenantId = report.tenants[0];
  if (tenantId === undefined) return { ...report, ok: false };
  const first = await catalog.directory.get(tenantId as TenantId);
  const folder = await mkdtemp(join(tmpdir(), 'mtp-contract-'));
  const again = await mkdtemp(join(tmpdir(), 'mtp-contract-'));
  try {
    await store
      .forTenant(tenantId)
      .run((tx) => tx.insert(options.table).values(options.row(tenantId as TenantId, 99)));
    const exported = await store.exportTables(first!, folder);
    report.checks += 1;
    if (!exported.some((table) => table.rows > 0)) violation('export', tenantId, 'the export holds no rows');

    await store.dropStorage(first!);
    const left = await store
      .forTenant(tenantId)
      .run(async (tx) => (await tx.select({ n: sql<number>`count(*)::int` }).from(options.table))[0]?.n ?? 0)
      .catch(() => 0); // a dropped schema or database refuses the unit of work: nothing to see
    report.checks += 1;
    if (left !== 0) violation('drop', tenantId, `${left} rows still visible after dropStorage`);

    const recreated = (await store.createStorage((await catalog.directory.get(tenantId as TenantId))!))
      .tenant;
    await store.importTables(recreated, folder, exported);
    const reexported = await store.exportTables(recreated, again);
    for (const table of exported) {
      report.checks += 1;
      const copy = reexported.find((entry) => entry.name === table.name);
      if (copy?.rows !== table.rows || copy.sha256 !== table.sha256) {
        violation('round trip', tenantId, `table ${table.name} differs after export → drop → import`);
      }
    }
    const repeated = await store.createStorage(recreated);
    report.checks += 1;
    if (repeated.applied.length > 0)
      violation('idempotent', tenantId, `createStorage applied ${repeated.applied.join(', ')} again`);
  } catch (error) {
    violation('contract', tenantId, (error as Error).message);
  } finally {
    await rm(folder, { recursive: true, force: true });
    await rm(again, { recursive: true, force: true });
  }
  report.ok = report.violations.length === 0;
  return report;
}
