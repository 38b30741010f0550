import type { BuildColumns, BuildExtraConfigColumns, ColumnBuilderBase } from 'drizzle-orm';
import { is, type SQL, sql } from 'drizzle-orm';
import {
  IndexBuilder,
  index,
  type PgColumnBuilderBase,
  type PgTableExtraConfigValue,
  type PgTableWithColumns,
  PrimaryKeyBuilder,
  pgPolicy,
  pgTable,
  primaryKey,
  text,
  UniqueConstraintBuilder,
  unique,
} from 'drizzle-orm/pg-core';

/** The session setting every unit of work sets to the current tenant id. */
export const TENANT_SETTING = 'app.tenant_id';

/** `nullif(current_setting('app.tenant_id', true), '')` — the current tenant, or NULL when none is set (fail closed). */
export const currentTenantSql: SQL = sql.raw(`nullif(current_setting('${TENANT_SETTING}', true), '')`);

/** Name of the RLS policy `tenantTable()` adds to every table. */
export function tenantPolicyName(tableName: string): string {
  return `${tableName}_tenant_isolation`;
}

/** The `tenant_id` column every tenant table gets: not null, defaulting from the session setting. */
export function tenantIdColumn() {
  return text('tenant_id').notNull().default(currentTenantSql);
}

type TenantColumns<TColumns extends Record<string, PgColumnBuilderBase>> = {
  tenantId: ReturnType<typeof tenantIdColumn>;
} & TColumns;

/** A table declared with {@link tenantTable}. */
export type TenantTable<
  TTableName extends string,
  TColumns extends Record<string, PgColumnBuilderBase>,
> = PgTableWithColumns<{
  name: TTableName;
  schema: undefined;
  columns: BuildColumns<TTableName, TenantColumns<TColumns>, 'pg'>;
  dialect: 'pg';
}>;

interface BuilderConfig {
  name: string;
  primaryKey: boolean;
  notNull: boolean;
  isUnique: boolean;
  uniqueName: string | undefined;
  uniqueType: 'distinct' | 'not distinct' | undefined;
}

const TENANT_TABLES = new WeakSet<object>();

/** True for a table declared with {@link tenantTable}. */
export function isTenantTable(table: unknown): boolean {
  return typeof table === 'object' && table !== null && TENANT_TABLES.has(table);
}

/**
 * Declares a tenant table once for every isolation mode.
 *
 * It adds a `tenant_id` column (not null, default `nullif(current_setting('app.tenant_id', true), '')`),
 * puts `tenant_id` first in the primary key and in every unique constraint/index (Citus-ready),
 * indexes `tenant_id` when no primary key leads with it, and adds a fail-closed RLS policy
 * (`USING` and `WITH CHECK` on `tenant_id = nullif(current_setting('app.tenant_id', true), '')`);
 * drizzle-kit then emits `ENABLE ROW LEVEL SECURITY` and the policy. `FORCE ROW LEVEL SECURITY`
 * and the app role's grants are applied by `migrateTenants()` after every migration run.
 *
 * Declare the primary key as usual (`id: uuid().defaultRandom().primaryKey()` or
 * `primaryKey({ columns: [t.id] })`); it becomes `(tenant_id, id)`.
 *
 * @example
 * export const courses = tenantTable('courses', {
 *   id: uuid().defaultRandom().primaryKey(),
 *   title: text().notNull(),
 *   code: text().notNull().unique(),
 * });
 */
export function tenantTable<TTableName extends string, TColumns extends Record<string, PgColumnBuilderBase>>(
  name: TTableName,
  columns: TColumns,
  extras?: (
    self: BuildExtraConfigColumns<TTableName, TenantColumns<TColumns>, 'pg'>,
  ) => PgTableExtraConfigValue[],
): TenantTable<TTableName, TColumns> {
  if ('tenantId' in columns) {
    throw new TypeError(`tenantTable("${name}"): do not declare "tenantId"; tenantTable adds it.`);
  }
  const primaryKeyColumns: string[] = [];
  const uniqueColumns: Array<{
    key: string;
    name: string | undefined;
    nulls: 'distinct' | 'not distinct' | undefined;
  }> = [];
  for (const [key, builder] of Object.entries(columns)) {
    const config = (builder as unknown as { config: BuilderConfig }).config;
    if (config.name === 'tenant_id') {
      throw new TypeError(
        `tenantTable("${name}"): the column name "tenant_id" is reserved; tenantTable adds it.`,
      );
    }
    if (config.primaryKey) {
      config.primaryKey = false;
      config.notNull = true;
      primaryKeyColumns.push(key);
    }
    if (config.isUnique) {
      config.isUnique = false;
      uniqueColumns.push({ key, name: config.uniqueName, nulls: config.uniqueType });
    }
  }
  const allColumns = { tenantId: tenantIdColumn(), ...columns } as TenantColumns<TColumns>;
  const table = pgTable(name, allColumns, (self) => {
    const columnsOf = self as unknown as Record<string, ColumnBuilderBase & { name?: string }>;
    const tenantColumn = columnsOf.tenantId!;
    const leadWithTenant = <T>(list: T[]): T[] => [
      tenantColumn as T,
      ...list.filter((column) => column !== (tenantColumn as unknown)),
    ];
    const userExtras = extras ? extras(self) : [];
    const result: PgTableExtraConfigValue[] = [];
    let hasPrimaryKey = false;
    for (const item of userExtras) {
      if (is(item, PrimaryKeyBuilder)) {
        const internal = item as unknown as { columns: unknown[] };
        internal.columns = leadWithTenant(internal.columns);
        hasPrimaryKey = true;
      } else if (is(item, UniqueConstraintBuilder)) {
        const internal = item as unknown as { columns: unknown[] };
        internal.columns = leadWithTenant(internal.columns);
      } else if (is(item, IndexBuilder)) {
        const internal = item as unknown as { config: { unique: boolean; columns: unknown[] } };
        if (internal.config.unique) internal.config.columns = leadWithTenant(internal.config.columns);
      }
      result.push(item);
    }
    if (primaryKeyColumns.length > 0) {
      if (hasPrimaryKey) {
        throw new TypeError(`tenantTable("${name}"): declare the primary key once (column or primaryKey()).`);
      }
      result.push(
        primaryKey({
          name: `${name}_pkey`,
          columns: leadWithTenant(primaryKeyColumns.map((key) => columnsOf[key]!)) as never,
        }),
      );
      hasPrimaryKey = true;
    }
    for (const entry of uniqueColumns) {
      const constraint = unique(entry.name ?? `${name}_${snake(entry.key, columnsOf[entry.key])}_unique`).on(
        tenantColumn as never,
        columnsOf[entry.key] as never,
      );
      result.push(entry.nulls === 'not distinct' ? constraint.nullsNotDistinct() : constraint);
    }
    if (!hasPrimaryKey) result.push(index(`${name}_tenant_id_idx`).on(tenantColumn as never));
    result.push(
      pgPolicy(tenantPolicyName(name), {
        as: 'permissive',
        for: 'all',
        to: 'public',
        using: sql`${sql.identifier('tenant_id')} = ${currentTenantSql}`,
        withCheck: sql`${sql.identifier('tenant_id')} = ${currentTenantSql}`,
      }),
    );
    return result;
  });
  TENANT_TABLES.add(table);
  return table as unknown as TenantTable<TTableName, TColumns>;
}

function snake(key: string, column: unknown): string {
  const name = (column as { name?: string } | undefined)?.name;
  return name !== undefined && name !== '' ? name : key;
}
