import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { MtPaasError } from '@mt-paas/context';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';

/** A tenant table as exported: its name and the columns copied (in order). */
export interface TenantTableInfo {
  name: string;
  columns: string[];
}

/** Where a tenant's tables are and how to reach them as the app role (`IsolationModeStore.connect`). */
export interface StorageTarget {
  mode: 'row' | 'schema' | 'database' | 'docker';
  /** URL of the app role on the tenant's database. */
  url: string;
  /** Schema of the tenant's tables there. */
  schema: string;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
const LEDGER = '__mt_paas_migrations';

/** `"name"` for names read from pg_catalog (validated against the identifier grammar first). */
export function quoteName(name: string): string {
  if (!IDENTIFIER.test(name)) {
    throw new MtPaasError('INVALID_REQUEST', `"${name}" is not a plain lower-case SQL identifier; refused.`);
  }
  return `"${name}"`;
}

/**
 * One transaction on a tenant's storage as the app role, scoped like a unit of work
 * (`app.tenant_id`, and `search_path` in schema mode): row-level security limits what it reads and
 * writes to the tenant's rows.
 */
export async function withTenantSession<T>(
  target: StorageTarget,
  tenantId: string,
  fn: (client: pg.Client) => Promise<T>,
  options: { readOnly?: boolean; isolation?: 'repeatable read' } = {},
): Promise<T> {
  const client = new pg.Client({ connectionString: target.url });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(
      `BEGIN ISOLATION LEVEL ${options.isolation === 'repeatable read' ? 'REPEATABLE READ' : 'READ COMMITTED'}${options.readOnly ? ' READ ONLY' : ''}`,
    );
    await client.query(`SELECT set_config('app.tenant_id', $1, true), set_config('search_path', $2, true)`, [
      tenantId,
      quoteName(target.schema),
    ]);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    await client.end().catch(() => {});
  }
}

/** The tenant tables of the target schema (a `tenant_id` column), parents before children. */
export async function listTenantTables(client: pg.Client, schema: string): Promise<TenantTableInfo[]> {
  const { rows } = await client.query<{ name: string; columns: string[] }>(
    `SELECT c.relname AS name,
            array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attgenerated = '') AS columns
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname <> $2
        AND EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'tenant_id' AND NOT t.attisdropped)
      GROUP BY c.relname ORDER BY c.relname`,
    [schema, LEDGER],
  );
  const { rows: edges } = await client.query<{ child: string; parent: string }>(
    `SELECT cc.relname AS child, pc.relname AS parent
       FROM pg_constraint k
       JOIN pg_class cc ON cc.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace
       JOIN pg_class pc ON pc.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
      WHERE k.contype = 'f' AND cn.nspname = $1 AND pn.nspname = $1 AND cc.oid <> pc.oid`,
    [schema],
  );
  const names = new Set(rows.map((row) => row.name));
  const ordered: TenantTableInfo[] = [];
  const placed = new Set<string>();
  for (const row of rows) for (const column of row.columns) quoteName(column);
  let pending: TenantTableInfo[] = rows.map((row) => ({ name: row.name, columns: row.columns }));
  while (pending.length > 0) {
    const ready = pending.filter((table) =>
      edges.every((edge) => edge.child !== table.name || !names.has(edge.parent) || placed.has(edge.parent)),
    );
    if (ready.length === 0) {
      throw new MtPaasError(
        'INTERNAL',
        `Foreign keys between ${pending.map((t) => t.name).join(', ')} form a cycle.`,
      );
    }
    for (const table of ready) {
      ordered.push(table);
      placed.add(table.name);
    }
    pending = pending.filter((table) => !placed.has(table.name));
  }
  return ordered;
}

/**
 * Streams one table's rows (deterministic order) into `file` — or, without a file, only counts and
 * hashes them; returns rows and the sha256 of the COPY text.
 */
export async function copyTableOut(
  client: pg.Client,
  table: TenantTableInfo,
  file?: string,
): Promise<{ rows: number; sha256: string }> {
  const columns = table.columns.map(quoteName).join(', ');
  const stream = client.query(
    copyTo(`COPY (SELECT ${columns} FROM ${quoteName(table.name)} AS r ORDER BY r::text) TO STDOUT`),
  );
  const hash = createHash('sha256');
  let rows = 0;
  const count = (chunk: Buffer) => {
    hash.update(chunk);
    for (const byte of chunk) if (byte === 10) rows += 1;
  };
  if (file === undefined) {
    for await (const chunk of stream as AsyncIterable<Buffer>) count(chunk);
  } else {
    stream.on('data', count);
    await pipeline(stream, createWriteStream(file, { mode: 0o600 }));
  }
  return { rows, sha256: hash.digest('hex') };
}

/** The rows and sha256 of one table as {@link copyTableOut} would write them, without a file. */
export function digestTable(
  client: pg.Client,
  table: TenantTableInfo,
): Promise<{ rows: number; sha256: string }> {
  return copyTableOut(client, table);
}

/**
 * Loads `file` into the table through a temporary table (COPY FROM refuses tables under row-level
 * security) and `INSERT … SELECT`, so that the table's policies check every row.
 */
export async function copyTableIn(client: pg.Client, table: TenantTableInfo, file: string): Promise<number> {
  const columns = table.columns.map(quoteName).join(', ');
  await client.query(
    `CREATE TEMP TABLE mt_paas_import (LIKE ${quoteName(table.name)} INCLUDING DEFAULTS) ON COMMIT DROP`,
  );
  await pipeline(
    createReadStream(file),
    client.query(copyFrom(`COPY mt_paas_import (${columns}) FROM STDIN`)),
  );
  const inserted = await client.query(
    `INSERT INTO ${quoteName(table.name)} (${columns}) OVERRIDING SYSTEM VALUE SELECT ${columns} FROM mt_paas_import`,
  );
  await client.query('DROP TABLE mt_paas_import');
  return inserted.rowCount ?? 0;
}
