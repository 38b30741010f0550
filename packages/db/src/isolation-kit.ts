import { isMtPaasError, parseTenantId, runWithTenant, type TenantId } from '@mt-paas/context';
import { eq, sql } from 'drizzle-orm';
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import type { TenantDb } from './tenant-db.js';
import type { TenantTransaction } from './unit-of-work.js';

/** A table declared with `tenantTable()` (anything with a `tenantId` column). */
export type AnyTenantTable = PgTable & { tenantId: PgColumn };

/** Options of {@link testIsolationMode}. */
export interface IsolationKitOptions {
  /** The tenant db under test (its mode is the mode tested). Its migrations must create `table`. */
  // biome-ignore lint/suspicious/noExplicitAny: a tenant db with any drizzle schema
  tenantDb: TenantDb<any>;
  /** A table declared with `tenantTable()`. */
  table: AnyTenantTable;
  /** Column values of the `index`-th row of a tenant (without `tenantId`); must satisfy the table's constraints. */
  row: (tenantId: TenantId, index: number) => Record<string, unknown>;
  /** A `SET` applied to every row of a tenant in the update step. */
  update: Record<string, unknown>;
  /** Number of tenants. @default 20 */
  tenants?: number;
  /** Rows each tenant inserts per round. @default 4 */
  rowsPerTenant?: number;
  /** Interleaved rounds of insert / select / update / delete. @default 3 */
  rounds?: number;
  /** Prefix of the tenant ids the kit creates. @default 'iso_' */
  tenantPrefix?: string;
  /**
   * Creates a tenant before the run.
   * @default upsert it as active in the catalog, then `tenantDb.createTenantStorage(id)`
   */
  prepareTenant?: (tenantId: TenantId) => Promise<void>;
}

/** One isolation failure. */
export interface IsolationViolation {
  step: string;
  tenantId?: string;
  message: string;
}

/** What {@link testIsolationMode} found. `ok` is true only when no violation was seen. */
export interface IsolationReport {
  mode: TenantDb['mode'];
  tenants: string[];
  /** Assertions evaluated. */
  checks: number;
  violations: IsolationViolation[];
  ok: boolean;
}

/**
 * Runs the isolation contract against a tenant db: `tenants` tenants work concurrently with
 * interleaved reads and writes; every SELECT / UPDATE / DELETE must see only the tenant's own rows,
 * an INSERT (or UPDATE) carrying another tenant's id must fail, and a unit of work without tenant
 * context must fail or see zero rows — never another tenant's data. Finally, with rows of two tenants
 * in place, every relation the app role can read (any schema: tables, views, materialized views) is
 * read as each of them and must show none of the other tenant's rows (step `relations`).
 *
 * Framework-neutral: it never throws for a violation, it returns them. Use {@link assertIsolation}
 * to throw with a readable list.
 */
export async function testIsolationMode(options: IsolationKitOptions): Promise<IsolationReport> {
  const { tenantDb, table } = options;
  const count = options.tenants ?? 20;
  const perRound = options.rowsPerTenant ?? 4;
  const rounds = options.rounds ?? 3;
  const prefix = options.tenantPrefix ?? 'iso_';
  const tenantIds = Array.from({ length: count }, (_, index) => parseTenantId(`${prefix}${index}`));
  const violations: IsolationViolation[] = [];
  let checks = 0;
  const check = (condition: boolean, step: string, tenantId: string | undefined, message: string) => {
    checks += 1;
    if (!condition) violations.push(tenantId === undefined ? { step, message } : { step, tenantId, message });
  };

  const prepare =
    options.prepareTenant ??
    (async (tenantId: TenantId) => {
      await tenantDb.catalog.tenants.upsert({
        id: tenantId,
        name: `Isolation ${tenantId}`,
        status: 'active',
        placement: { mode: tenantDb.mode },
      });
      await tenantDb.createTenantStorage(tenantId);
    });
  for (const tenantId of tenantIds) await prepare(tenantId);

  // Start from a clean table for the kit's tenants.
  await Promise.all(tenantIds.map((tenantId) => tenantDb.forTenant(tenantId).run((tx) => tx.delete(table))));

  const tenantColumn = table.tenantId;
  const own = (tenantId: TenantId, rows: Array<Record<string, unknown>>, step: string) => {
    for (const row of rows) {
      check(row.tenantId === tenantId, step, tenantId, `saw a row of tenant "${String(row.tenantId)}"`);
    }
  };
  const expected = new Map<TenantId, number>(tenantIds.map((tenantId) => [tenantId, 0]));

  const work = async (tenantId: TenantId, position: number) => {
    // Half of the tenants go through the ambient context (run), half through forTenant().
    // biome-ignore lint/suspicious/noExplicitAny: a tenant db with any drizzle schema
    const run = <T>(fn: (tx: TenantTransaction<any>) => T | Promise<T>) =>
      position % 2 === 0
        ? runWithTenant({ tenantId }, () => tenantDb.run(fn))
        : tenantDb.forTenant(tenantId).run(fn);
    let next = 0;
    for (let round = 0; round < rounds; round += 1) {
      for (let index = 0; index < perRound; index += 1) {
        const inserted = (await run((tx) =>
          tx
            .insert(table)
            .values(options.row(tenantId, next++) as never)
            .returning(),
        )) as Array<Record<string, unknown>>;
        own(tenantId, inserted, 'insert');
        expected.set(tenantId, (expected.get(tenantId) ?? 0) + inserted.length);
        await new Promise((resolve) => setImmediate(resolve));
      }
      const setting = await run(async (tx) => {
        const result = await tx.execute(sql`select current_setting('app.tenant_id', true) as tenant`);
        return (result as unknown as { rows: Array<{ tenant: string }> }).rows[0]?.tenant;
      });
      check(
        setting === tenantId,
        'setting',
        tenantId,
        `app.tenant_id was "${String(setting)}" inside the unit of work`,
      );
      const selected = (await run((tx) => tx.select().from(table))) as Array<Record<string, unknown>>;
      own(tenantId, selected, 'select');
      check(
        selected.length === expected.get(tenantId),
        'select',
        tenantId,
        `saw ${selected.length} rows, expected ${expected.get(tenantId)}`,
      );
      const filtered = (await run((tx) =>
        tx
          .select()
          .from(table)
          .where(eq(tenantColumn, tenantIds[(position + 1) % tenantIds.length]!)),
      )) as unknown[];
      check(
        filtered.length === 0,
        'select-other',
        tenantId,
        `a WHERE on another tenant's id returned ${filtered.length} rows`,
      );
      const updated = (await run((tx) =>
        tx
          .update(table)
          .set(options.update as never)
          .returning(),
      )) as Array<Record<string, unknown>>;
      own(tenantId, updated, 'update');
      check(
        updated.length === expected.get(tenantId),
        'update',
        tenantId,
        `updated ${updated.length} rows, expected ${expected.get(tenantId)}`,
      );
      const deleted = (await run(async (tx) => {
        const first = await tx.select().from(table).limit(1);
        if (first.length === 0) return [];
        return tx.delete(table).where(sql`ctid = (select ctid from ${table} limit 1)`).returning();
      })) as Array<Record<string, unknown>>;
      own(tenantId, deleted, 'delete');
      check(deleted.length === 1, 'delete', tenantId, `deleted ${deleted.length} rows, expected 1`);
      expected.set(tenantId, (expected.get(tenantId) ?? 0) - deleted.length);
    }
  };
  const results = await Promise.allSettled(tenantIds.map((tenantId, position) => work(tenantId, position)));
  results.forEach((result, position) => {
    check(
      result.status === 'fulfilled',
      'unit-of-work',
      tenantIds[position],
      result.status === 'rejected' ? `failed: ${(result.reason as Error)?.message}` : '',
    );
  });

  // Writes carrying another tenant's id must fail.
  await Promise.all(
    tenantIds.map(async (tenantId, position) => {
      const other = tenantIds[(position + 1) % tenantIds.length]!;
      const insert = await tenantDb
        .forTenant(tenantId)
        .run((tx) =>
          tx.insert(table).values({ ...options.row(tenantId, 10_000 + position), tenantId: other } as never),
        )
        .then(
          () => 'succeeded',
          () => 'failed',
        );
      check(insert === 'failed', 'insert-other', tenantId, `an INSERT with tenant_id "${other}" succeeded`);
      const moved = await tenantDb
        .forTenant(tenantId)
        .run((tx) =>
          tx
            .update(table)
            .set({ tenantId: other } as never)
            .returning(),
        )
        .then(
          (rows) => (rows as unknown[]).length,
          () => 0,
        );
      check(moved === 0, 'update-other', tenantId, `an UPDATE moved ${moved} rows to tenant "${other}"`);
    }),
  );

  // Every row is where it belongs, seen from each tenant.
  for (const tenantId of tenantIds) {
    const rows = (await tenantDb.forTenant(tenantId).run((tx) => tx.select().from(table))) as Array<
      Record<string, unknown>
    >;
    own(tenantId, rows, 'final-select');
    check(
      rows.length === expected.get(tenantId),
      'final-select',
      tenantId,
      `saw ${rows.length} rows, expected ${expected.get(tenantId)}`,
    );
  }

  // No tenant context: an error or nothing, never data.
  const withoutContext = await tenantDb
    .run((tx) => tx.select().from(table))
    .then(
      (rows) => `returned ${(rows as unknown[]).length} rows`,
      (error: unknown) =>
        isMtPaasError(error, 'TENANT_CONTEXT_MISSING') ? 'refused' : `failed: ${(error as Error).message}`,
    );
  check(
    withoutContext === 'refused',
    'no-context',
    undefined,
    `run() outside a tenant context ${withoutContext}`,
  );
  if (tenantDb.mode !== 'database') {
    const unscoped = await tenantDb
      .unscoped((tx) => tx.select().from(table))
      .then(
        (rows) => (rows as unknown[]).length,
        () => 0,
      );
    check(unscoped === 0, 'no-context', undefined, `a transaction with no tenant set saw ${unscoped} rows`);
    const unscopedInsert = await tenantDb
      .unscoped((tx) => tx.insert(table).values(options.row(tenantIds[0]!, 20_000) as never))
      .then(
        () => 'succeeded',
        () => 'failed',
      );
    check(unscopedInsert === 'failed', 'no-context', undefined, 'an INSERT with no tenant set succeeded');
  }

  // Behaviour, not text: with rows of two tenants in place, every relation the app role can read (tables,
  // views, materialized views, foreign tables, in any schema) is read as each of them; no cell may be
  // another tenant's (its tenant_id, or a value only the other tenant's rows hold, e.g. their ids).
  await sweepRelations(tenantDb, table, options, tenantIds.slice(0, 2), check);

  return { mode: tenantDb.mode, tenants: tenantIds, checks, violations, ok: violations.length === 0 };
}

/** Every relation the current role can SELECT from, outside the system schemas. */
const READABLE_RELATIONS_SQL = `SELECT format('%I.%I', n.nspname, c.relname) AS name
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND has_table_privilege(c.oid, 'SELECT')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
 ORDER BY 1`;

const cellText = (value: unknown): string =>
  value instanceof Date
    ? value.toISOString()
    : typeof value === 'object'
      ? JSON.stringify(value)
      : String(value);

async function sweepRelations(
  tenantDb: IsolationKitOptions['tenantDb'],
  table: AnyTenantTable,
  options: IsolationKitOptions,
  tenants: TenantId[],
  check: (condition: boolean, step: string, tenantId: string | undefined, message: string) => void,
): Promise<void> {
  if (tenants.length < 2) return;
  // Both tenants get a fresh row, then every value of their rows is a fingerprint of its tenant
  // (values both tenants share, like a default, are not).
  const owners = new Map<string, Set<string>>();
  for (const [position, tenantId] of tenants.entries()) {
    const rows = (await tenantDb.forTenant(tenantId).run(async (tx) => {
      await tx.insert(table).values(options.row(tenantId, 30_000 + position) as never);
      return tx.select().from(table);
    })) as Array<Record<string, unknown>>;
    for (const row of rows) {
      for (const value of Object.values(row)) {
        if (value === null || value === undefined) continue;
        const text = cellText(value);
        if (text.length < 4) continue;
        owners.set(text.toLowerCase(), (owners.get(text.toLowerCase()) ?? new Set()).add(tenantId));
      }
    }
  }
  const fingerprints = [...owners]
    .filter(([, set]) => set.size === 1)
    .map(([text, set]) => [text, [...set][0]!]);
  for (const tenantId of tenants) {
    const scope = tenantDb.forTenant(tenantId);
    const relations = (await scope.run(async (tx) => {
      const result = await tx.execute(sql.raw(READABLE_RELATIONS_SQL));
      return (result as unknown as { rows: Array<{ name: string }> }).rows.map((row) => row.name);
    })) as string[];
    for (const relation of relations) {
      const rows = await scope
        .run(async (tx) => {
          const result = await tx.execute(sql.raw(`SELECT * FROM ${relation} LIMIT 10000`));
          return (result as unknown as { rows: Array<Record<string, unknown>> }).rows;
        })
        .catch(() => [] as Array<Record<string, unknown>>); // not readable from this unit: nothing seen
      let leaked: string | undefined;
      for (const row of rows) {
        for (const [column, value] of Object.entries(row)) {
          if (value === null || value === undefined) continue;
          if (column === 'tenant_id' && value !== tenantId) leaked ??= `tenant_id "${String(value)}"`;
          const text = cellText(value).toLowerCase();
          for (const [fingerprint, owner] of fingerprints) {
            if (owner !== tenantId && text.includes(fingerprint!)) leaked ??= `a value of tenant "${owner}"`;
          }
        }
      }
      check(
        leaked === undefined,
        'relations',
        tenantId,
        `${relation} shows ${leaked ?? ''} to this tenant (a view, materialized view or function-backed relation that bypasses row-level security?)`,
      );
    }
  }
}

/** Throws an `Error` listing the violations when `report.ok` is false. */
export function assertIsolation(report: IsolationReport): void {
  if (report.ok) return;
  const lines = report.violations
    .slice(0, 20)
    .map(
      (violation) =>
        `- [${violation.step}]${violation.tenantId ? ` ${violation.tenantId}:` : ''} ${violation.message}`,
    );
  throw new Error(
    `Isolation violated in ${report.mode} mode (${report.violations.length} of ${report.checks} checks):\n${lines.join('\n')}`,
  );
}
