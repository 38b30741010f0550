import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMtPaasError, type TenantId } from '@mt-paas/context';
import { eq, sql } from 'drizzle-orm';
import type { Catalog } from './catalog.js';
import { type IsolationKitOptions, type IsolationReport, testIsolationMode } from './isolation-kit.js';
import type { IsolationModeStore } from './isolation-mode.js';
import { WRITE_FREEZE_KEY } from './write-freeze.js';

/** Options of {@link testIsolationModeStore}. */
export interface IsolationModeContractOptions {
  /** The mode under test (`tenantDb.isolation`, or a mode of your own such as provisioning's docker one). */
  // biome-ignore lint/suspicious/noExplicitAny: a mode with any createStorage options
  store: IsolationModeStore<any>;
  /** @default `store.tenantDb.catalog` */
  catalog?: Catalog;
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
 * The contract suite every isolation mode runs (`IsolationModeStore`: row, schema and database here,
 * docker in `@mt-paas/provisioning`), the way unstorage runs one suite over every driver.
 * Framework-neutral: it returns a report (`assertIsolation(report)` throws with the violations).
 * 1. `createStorage` for each tenant, then the db isolation kit (`testIsolationMode`): concurrent tenants
 *    see and write only their own rows through `store.forTenant`;
 * 2. a move window (the tenant's `WRITE_FREEZE_KEY`): its units still read, a write is refused with
 *    `SERVICE_UNAVAILABLE` (503, `Retry-After`) and nothing is written; afterwards writes work again;
 * 3. `exportTables` → `checksumTables` agrees → `dropStorage` (afterwards the tenant sees nothing) →
 *    `createStorage` → `importTables` gives back byte-identical tables (same rows, same sha256);
 * 4. `createStorage` again is a no-op (idempotent).
 */
export async function testIsolationModeStore(
  options: IsolationModeContractOptions,
): Promise<IsolationReport> {
  const { store } = options;
  const catalog = options.catalog ?? store.tenantDb.catalog;
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
  const count = () =>
    store
      .forTenant(tenantId)
      .run(async (tx) => (await tx.select({ n: sql<number>`count(*)::int` }).from(options.table))[0]?.n ?? 0);
  const tenants = catalog.tables.tenants;
  const setFreeze = async (on: boolean) => {
    await catalog.driver.db
      .update(tenants)
      .set({
        metadata: on
          ? sql`${tenants.metadata} || ${JSON.stringify({ [WRITE_FREEZE_KEY]: { reason: 'move', retryAfterSeconds: 7 } })}::jsonb`
          : sql`${tenants.metadata} - ${WRITE_FREEZE_KEY}`,
      })
      .where(eq(tenants.id, tenantId));
    store.tenantDb.forget(tenantId);
  };
  try {
    const before = await count();
    await setFreeze(true);
    try {
      report.checks += 1;
      if ((await count()) !== before)
        violation('move window', tenantId, 'a read saw other rows while paused');
      const refusal = await store
        .forTenant(tenantId)
        .run((tx) => tx.insert(options.table).values(options.row(tenantId as TenantId, 98)))
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      report.checks += 1;
      if (
        !isMtPaasError(refusal, 'SERVICE_UNAVAILABLE') ||
        refusal.httpStatus !== 503 ||
        refusal.headers?.['retry-after'] !== '7'
      ) {
        violation(
          'move window',
          tenantId,
          `a write was not refused with 503 + Retry-After: ${String(refusal)}`,
        );
      }
    } finally {
      await setFreeze(false);
    }
    report.checks += 1;
    if ((await count()) !== before) violation('move window', tenantId, 'a refused write left rows behind');
  } catch (error) {
    violation('move window', tenantId, (error as Error).message);
  }
  const folder = await mkdtemp(join(tmpdir(), 'mtp-contract-'));
  const again = await mkdtemp(join(tmpdir(), 'mtp-contract-'));
  try {
    await store
      .forTenant(tenantId)
      .run((tx) => tx.insert(options.table).values(options.row(tenantId as TenantId, 99)));
    const exported = await store.exportTables(first!, folder);
    report.checks += 1;
    if (!exported.some((table) => table.rows > 0)) violation('export', tenantId, 'the export holds no rows');
    const sums = await store.checksumTables(first!, exported);
    for (const table of exported) {
      report.checks += 1;
      const sum = sums.get(table.name);
      if (sum?.rows !== table.rows || sum.sha256 !== table.sha256) {
        violation('checksum', tenantId, `checksumTables disagrees with the export of ${table.name}`);
      }
    }

    await store.dropStorage(first!);
    const left = await count().catch(() => 0); // a dropped schema or database refuses the unit of work: nothing to see
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
