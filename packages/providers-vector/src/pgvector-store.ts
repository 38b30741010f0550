import { createHash } from 'node:crypto';
import { MtPaasError, type TenantId } from '@mt-paas/context';
import { defineVectorStore } from './define-vector-store.js';
import type { NormalizedFilter, VectorMatch, VectorMetadata, VectorStore } from './types.js';
import { checkDimensions, sanitizeName } from './validation.js';

/**
 * The one thing the pgvector store needs from a database: run a parameterised statement.
 * A `pg` `Pool` or `Client`, a PGlite instance, a PGlite transaction and a `pg` client inside
 * a transaction all fit as they are.
 */
export interface SqlExecutor {
  query(text: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
  /**
   * Optional (PGlite has it): runs `callback` in a transaction. Used to scope pgvector's
   * `hnsw.iterative_scan` to one query. A `pg` Pool is recognised and checked out instead.
   */
  transaction?<T>(callback: (transaction: SqlExecutor) => Promise<T>): Promise<T>;
}

/** pgvector ≥ 0.8 `hnsw.iterative_scan` mode used for queries. */
export type IterativeScan = 'strict_order' | 'relaxed_order' | 'off';

/**
 * Runs `work` in the tenant's database scope and returns its result — e.g. the unit of work of
 * `@mt-paas/db` (`(tenantId, work) => tenantDb.forTenant(tenantId).run((tx) => work(executorOf(tx)))`).
 */
export type RunScoped = <T>(tenantId: TenantId, work: (executor: SqlExecutor) => Promise<T>) => Promise<T>;

/**
 * Options of {@link createPgVectorStore}. Give `executor`, `runScoped`, `connectionString`, or none
 * of them (embedded PGlite).
 */
export interface PgVectorStoreOptions {
  /** Length of the embedding model's vectors (the `vector(n)` column type). */
  dimensions: number;
  /** The embedding model's name; part of the default table name. @default 'default' */
  model?: string;
  /**
   * Where statements run: a `pg` Pool/Client or a PGlite instance (the caller keeps ownership). Every statement is filtered by
   * `tenant_id`, so one shared table serves all tenants.
   */
  executor?: SqlExecutor;
  /**
   * A Postgres URL: the store opens its own `pg` Pool (needs `pg`) and closes it in `close()`.
   * Ignored when `executor` or `runScoped` is given.
   */
  connectionString?: string;
  /**
   * Alternative to `executor`: runs each operation inside the tenant's scoped unit of work
   * (row mode with RLS, `schema` mode's `search_path`, or the tenant's own database).
   * Schema creation then happens once per tenant scope.
   */
  runScoped?: RunScoped;
  /**
   * With neither `executor` nor `runScoped`: the PGlite data directory of the embedded database
   * (needs `@electric-sql/pglite` and `@electric-sql/pglite-pgvector`). Closed by `store.close()`.
   * @default in-memory PGlite
   */
  dataDir?: string;
  /** Table name (`[a-z_][a-z0-9_]*`, at most 63 characters). @default `${tablePrefix}${model}_${dimensions}` */
  table?: string;
  /** Prefix of the default table name. @default 'mt_paas_vectors_' */
  tablePrefix?: string;
  /** Schema holding the table; unqualified (the `search_path`) when omitted. @default undefined */
  schema?: string;
  /**
   * Create the extension (when missing), table and indexes on first use. Turn off when a migration
   * creates them ({@link pgVectorSchemaSql}) and the app role may not run DDL.
   * @default true
   */
  createSchema?: boolean;
  /** HNSW build parameters. @default { m: 16, efConstruction: 64 } (pgvector's defaults) */
  hnsw?: { m?: number; efConstruction?: number };
  /**
   * pgvector ≥ 0.8's `hnsw.iterative_scan` for queries, set with `set_config(…, true)` inside the
   * query's transaction. Without it, when Postgres answers from the HNSW index (large tables), it
   * takes the `ef_search` nearest rows of all tenants and then drops other tenants' rows and
   * filter misses — a tenant with a small share of the table gets fewer than `topK` matches.
   * Needs a transaction: `runScoped`, a PGlite, a `pg` Pool or `connectionString` (a bare
   * `pg` Client runs without it). Ignored on pgvector < 0.8.
   * @default 'strict_order'
   */
  iterativeScan?: IterativeScan;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

function identifier(name: string, what: string): string {
  if (!IDENTIFIER.test(name)) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `pgvector ${what} "${name}" is not a valid identifier; use lower-case letters, digits and "_" (at most 63 characters).`,
      { details: { [what]: name } },
    );
  }
  return `"${name}"`;
}

/**
 * `name + suffix` within `max` characters: a name that does not fit is cut and given a hash of the
 * whole, so two long names never collapse into one table or index name.
 */
function fitIdentifier(name: string, max: number, suffix: string): string {
  if (name.length + suffix.length <= max) return name + suffix;
  const hash = createHash('sha1').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, max - suffix.length - hash.length - 1)}_${hash}${suffix}`;
}

interface ResolvedTable {
  /** Quoted, possibly schema-qualified table name. */
  qualified: string;
  /** Quoted index names. */
  hnswIndex: string;
  metadataIndex: string;
  dimensions: number;
  m: number;
  efConstruction: number;
}

function resolveTable(options: PgVectorStoreOptions): ResolvedTable {
  const dimensions = checkDimensions(options.dimensions);
  const base =
    options.table ??
    fitIdentifier(
      `${options.tablePrefix ?? 'mt_paas_vectors_'}${sanitizeName(options.model ?? 'default')}`,
      63,
      `_${dimensions}`,
    );
  const table = identifier(base, 'table');
  const qualified = options.schema === undefined ? table : `${identifier(options.schema, 'schema')}.${table}`;
  const short = fitIdentifier(base, 54, '');
  const m = options.hnsw?.m ?? 16;
  const efConstruction = options.hnsw?.efConstruction ?? 64;
  if (!Number.isInteger(m) || m < 2 || m > 100 || !Number.isInteger(efConstruction) || efConstruction < 4) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'pgvector hnsw.m must be an integer 2–100 and hnsw.efConstruction ≥ 4.',
    );
  }
  if (dimensions > 2000) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `pgvector's HNSW index supports at most 2000 dimensions (got ${dimensions}); use a model with fewer dimensions or reduce them.`,
      { details: { dimensions } },
    );
  }
  return {
    qualified,
    hnswIndex: `"${short}_hnsw_idx"`,
    metadataIndex: `"${short}_meta_idx"`,
    dimensions,
    m,
    efConstruction,
  };
}

/**
 * The DDL the store runs on first use (`createSchema: true`), for a migration instead:
 * the table with `tenant_id` leading the primary key, an HNSW `vector_cosine_ops` index and a GIN
 * index on metadata. Needs `CREATE EXTENSION vector` first.
 */
export function pgVectorSchemaSql(options: Omit<PgVectorStoreOptions, 'executor' | 'runScoped'>): string[] {
  const table = resolveTable(options);
  return [
    `create table if not exists ${table.qualified} (
  tenant_id text not null,
  id text not null,
  embedding vector(${table.dimensions}) not null,
  metadata jsonb not null default '{}'::jsonb,
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id)
)`,
    `create index if not exists ${table.hnswIndex} on ${table.qualified} using hnsw (embedding vector_cosine_ops) with (m = ${table.m}, ef_construction = ${table.efConstruction})`,
    `create index if not exists ${table.metadataIndex} on ${table.qualified} using gin (metadata jsonb_path_ops)`,
  ];
}

function pgErrorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

const INSTALL_HINT =
  'Install pgvector on the Postgres server (Debian/Ubuntu: `apt install postgresql-<major>-pgvector`; macOS: `brew install pgvector`; ' +
  'Docker: the `pgvector/pgvector:pg<major>` image; managed services: enable the "vector" extension), then run `CREATE EXTENSION vector;` ' +
  'as a superuser — or omit the executor to use the embedded PGlite with @electric-sql/pglite-pgvector ' +
  '(for your own PGlite: `new PGlite({ extensions: { vector } })`).';

async function installedVersion(executor: SqlExecutor): Promise<string | undefined> {
  const installed = await executor.query(`select extversion from pg_extension where extname = 'vector'`);
  return (installed.rows[0] as { extversion?: string } | undefined)?.extversion;
}

async function ensureExtension(executor: SqlExecutor): Promise<void> {
  if ((await installedVersion(executor)) !== undefined) return;
  const available = await executor.query(`select 1 from pg_available_extensions where name = 'vector'`);
  if (available.rows.length === 0) {
    const version = (await executor.query(`select current_setting('server_version') as version`)).rows[0] as
      | { version?: string }
      | undefined;
    throw new MtPaasError(
      'CONFIG_INVALID',
      `The pgvector extension is not available on this Postgres server (version ${version?.version ?? 'unknown'}). ${INSTALL_HINT}`,
      { details: { extension: 'vector', serverVersion: version?.version } },
    );
  }
  try {
    await executor.query('create extension if not exists vector');
  } catch (error) {
    const code = pgErrorCode(error);
    if (code === '42501') {
      throw new MtPaasError(
        'CONFIG_INVALID',
        'pgvector is installed on the server but not enabled in this database, and this role may not enable it: run `CREATE EXTENSION vector;` in this database as a superuser (or in a migration).',
        { details: { extension: 'vector' }, cause: error },
      );
    }
    if (code === '0A000' || code === '58P01') {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `The pgvector extension could not be created. ${INSTALL_HINT}`,
        {
          details: { extension: 'vector' },
          cause: error,
        },
      );
    }
    throw error;
  }
}

/** True for pgvector 0.8.0 and later (`hnsw.iterative_scan`). */
function supportsIterativeScan(version: string | undefined): boolean {
  const [major = 0, minor = 0] = (version ?? '0.0').split('.').map(Number);
  return major > 0 || minor >= 8;
}

async function ensureSchema(
  executor: SqlExecutor,
  statements: string[],
  createSchema: boolean,
): Promise<boolean> {
  if (createSchema) await ensureExtension(executor);
  for (const statement of createSchema ? statements : []) {
    try {
      await executor.query(statement);
    } catch (error) {
      // Two processes creating the same table/index at once: the loser sees a catalog conflict.
      const code = pgErrorCode(error);
      if (code !== '23505' && code !== '42P07') throw error;
    }
  }
  return supportsIterativeScan(await installedVersion(executor));
}

/** Turns the database errors a misconfiguration causes into `CONFIG_INVALID` saying what to do. */
function explainDatabaseError(error: unknown, table: ResolvedTable): unknown {
  if (MtPaasError.isInstance(error)) return error;
  const code = pgErrorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  const width = /expected (\d+) dimensions, not (\d+)/.exec(message);
  if (code === '22000' && width !== null) {
    return new MtPaasError(
      'CONFIG_INVALID',
      `Table ${table.qualified} holds vectors of ${width[1]} dimensions but this store writes ${width[2]}; give each embedding model its own table (the default table name includes model and dimensions).`,
      {
        details: { table: table.qualified, tableDimensions: Number(width[1]), dimensions: Number(width[2]) },
        cause: error,
      },
    );
  }
  if (code === '42P01') {
    return new MtPaasError(
      'CONFIG_INVALID',
      `Table ${table.qualified} does not exist: create it in a migration with pgVectorSchemaSql(), or let the store create it (createSchema: true).`,
      { details: { table: table.qualified }, cause: error },
    );
  }
  if (code === '42704' && /type "vector" does not exist/.test(message)) {
    return new MtPaasError(
      'CONFIG_INVALID',
      `The pgvector extension is not enabled in this database. ${INSTALL_HINT}`,
      {
        details: { extension: 'vector' },
        cause: error,
      },
    );
  }
  return error;
}

interface PgPoolLike extends SqlExecutor {
  idleCount: number;
  connect(): Promise<SqlExecutor & { release(error?: Error | boolean): void }>;
}

const isPgPool = (executor: SqlExecutor): executor is PgPoolLike =>
  typeof (executor as Partial<PgPoolLike>).connect === 'function' && 'idleCount' in executor;

/** Runs `work` in a transaction on `executor` when it can open one; otherwise directly. */
async function inTransaction<T>(
  executor: SqlExecutor,
  work: (executor: SqlExecutor, transactional: boolean) => Promise<T>,
): Promise<T> {
  if (typeof executor.transaction === 'function') {
    return executor.transaction((transaction) => work(transaction, true));
  }
  if (isPgPool(executor)) {
    const client = await executor.connect();
    try {
      await client.query('begin');
      const result = await work(client, true);
      await client.query('commit');
      client.release();
      return result;
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      client.release(error instanceof Error ? error : true);
      throw error;
    }
  }
  return work(executor, false);
}

function vectorLiteral(vector: readonly number[]): string {
  return `[${vector.join(',')}]`;
}

function filterSql(filter: NormalizedFilter, params: unknown[]): string {
  return filter
    .map((condition) => {
      params.push(condition.key);
      const key = `$${params.length}`;
      if (condition.values.length === 1) {
        params.push(JSON.stringify(condition.values[0]));
        return ` and metadata -> ${key}::text = $${params.length}::jsonb`;
      }
      params.push(JSON.stringify(condition.values));
      return ` and metadata -> ${key}::text in (select value from jsonb_array_elements($${params.length}::jsonb))`;
    })
    .join('');
}

interface PgliteModule {
  PGlite: { create(options: Record<string, unknown>): Promise<SqlExecutor & { close(): Promise<void> }> };
}

async function openEmbedded(dataDir: string | undefined): Promise<SqlExecutor & { close(): Promise<void> }> {
  let pglite: PgliteModule;
  let vector: unknown;
  try {
    pglite = (await import('@electric-sql/pglite')) as unknown as PgliteModule;
    ({ vector } = await import('@electric-sql/pglite-pgvector'));
  } catch (error) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'The embedded pgvector store needs `@electric-sql/pglite` and `@electric-sql/pglite-pgvector`; install both, or pass an `executor` (a pg Pool) for a Postgres server with pgvector.',
      { cause: error },
    );
  }
  return pglite.PGlite.create({ ...(dataDir === undefined ? {} : { dataDir }), extensions: { vector } });
}

interface PgModule {
  default: {
    Pool: new (config: {
      connectionString: string;
    }) => PgPoolLike & {
      end(): Promise<void>;
      on(event: 'error', listener: (error: Error) => void): unknown;
    };
  };
}

async function openPool(connectionString: string): Promise<SqlExecutor & { close(): Promise<void> }> {
  let pg: PgModule;
  try {
    pg = (await import('pg')) as unknown as PgModule;
  } catch (error) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'createPgVectorStore({ connectionString }) needs the `pg` package; install it.',
      {
        cause: error,
      },
    );
  }
  const pool = new pg.default.Pool({ connectionString });
  // An idle client dropped by the server (restart, failover) must not crash the process: the pool
  // discards it and the next query opens a new connection.
  pool.on('error', () => undefined);
  return Object.assign(pool, { close: () => pool.end() });
}

interface Row {
  id: string;
  metadata: VectorMetadata;
  score: number | string;
}

/**
 * A vector store in Postgres with pgvector: one table per embedding model, `tenant_id` leading the
 * primary key, an HNSW cosine index, and `tenant_id = $1` in every statement. Runs on a Postgres
 * server (pass a `pg` Pool), inside tenant-scoped units of work (`runScoped`), or on an embedded
 * PGlite (no options) with `@electric-sql/pglite-pgvector`.
 *
 * Queries run with pgvector ≥ 0.8's `hnsw.iterative_scan` (see {@link PgVectorStoreOptions.iterativeScan})
 * so a tenant with a small share of a large table still gets `topK` matches from the HNSW index.
 *
 * @throws MtPaasError `CONFIG_INVALID` on first use when the server has no pgvector (with how to install it).
 */
export function createPgVectorStore(options: PgVectorStoreOptions): VectorStore {
  if (options.executor !== undefined && options.runScoped !== undefined) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'Pass either `executor` or `runScoped` to createPgVectorStore, not both.',
    );
  }
  const table = resolveTable(options);
  const statements = pgVectorSchemaSql(options);
  const createSchema = options.createSchema ?? true;
  let embedded: Promise<SqlExecutor & { close(): Promise<void> }> | undefined;
  const iterativeScan = options.iterativeScan ?? 'strict_order';
  if (!['strict_order', 'relaxed_order', 'off'].includes(iterativeScan)) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'pgvector iterativeScan must be "strict_order", "relaxed_order" or "off".',
    );
  }
  /** Per scope: whether the server's pgvector supports iterative scans. */
  const ready = new Map<string, Promise<boolean>>();

  const prepare = (scope: string, executor: SqlExecutor): Promise<boolean> => {
    let promise = ready.get(scope);
    if (promise === undefined) {
      promise = ensureSchema(executor, statements, createSchema);
      promise.catch(() => ready.delete(scope));
      ready.set(scope, promise);
    }
    return promise;
  };

  const run = <T>(
    tenantId: TenantId,
    work: (executor: SqlExecutor) => Promise<T>,
    query = false,
  ): Promise<T> =>
    runUnexplained(tenantId, work, query).catch((error: unknown) => {
      throw explainDatabaseError(error, table);
    });

  const runUnexplained = async <T>(
    tenantId: TenantId,
    work: (executor: SqlExecutor) => Promise<T>,
    query: boolean,
  ): Promise<T> => {
    const scoped = async (executor: SqlExecutor, transactional: boolean, iterative: boolean) => {
      if (query && transactional && iterative && iterativeScan !== 'off') {
        await executor.query(`select set_config('hnsw.iterative_scan', $1, true)`, [iterativeScan]);
      }
      return work(executor);
    };
    if (options.runScoped !== undefined) {
      return options.runScoped(tenantId, async (executor) =>
        // A scoped unit of work is a transaction (that is how it scopes).
        scoped(executor, true, await prepare(`tenant:${tenantId}`, executor)),
      );
    }
    let executor = options.executor;
    if (executor === undefined) {
      if (embedded === undefined) {
        const opening =
          options.connectionString === undefined
            ? openEmbedded(options.dataDir)
            : openPool(options.connectionString);
        opening.catch(() => {
          if (embedded === opening) embedded = undefined; // let the next call try again
        });
        embedded = opening;
      }
      executor = await embedded;
    }
    const iterative = await prepare('shared', executor);
    if (!query || !iterative || iterativeScan === 'off') return work(executor);
    return inTransaction(executor, (inner, transactional) => scoped(inner, transactional, iterative));
  };

  return defineVectorStore({
    kind: 'pgvector',
    dimensions: table.dimensions,
    upsert: (tenantId, records) =>
      run(tenantId, async (executor) => {
        const rows = records.map((record) => ({
          id: record.id,
          embedding: vectorLiteral(record.vector),
          metadata: record.metadata,
        }));
        await executor.query(
          `insert into ${table.qualified} (tenant_id, id, embedding, metadata)
select $1, x.id, x.embedding::vector, x.metadata
from jsonb_to_recordset($2::jsonb) as x(id text, embedding text, metadata jsonb)
on conflict (tenant_id, id) do update
set embedding = excluded.embedding, metadata = excluded.metadata, updated_at = now()`,
          [tenantId, JSON.stringify(rows)],
        );
      }),
    query: (tenantId, query) =>
      run(
        tenantId,
        async (executor) => {
          const params: unknown[] = [tenantId, vectorLiteral(query.vector)];
          const where = filterSql(query.filter, params);
          params.push(query.topK);
          const result = await executor.query(
            `select id, metadata, 1 - (embedding <=> $2::vector) as score
from ${table.qualified}
where tenant_id = $1${where}
order by embedding <=> $2::vector, id
limit $${params.length}`,
            params,
          );
          return (result.rows as Row[]).map(
            (row): VectorMatch => ({ id: row.id, score: Number(row.score), metadata: row.metadata }),
          );
        },
        true,
      ),
    delete: (tenantId, request) =>
      run(tenantId, async (executor) => {
        const params: unknown[] = [tenantId];
        let where = '';
        if (request.ids !== undefined) {
          params.push(JSON.stringify(request.ids));
          where += ` and id in (select jsonb_array_elements_text($${params.length}::jsonb))`;
        }
        where += filterSql(request.filter, params);
        await executor.query(`delete from ${table.qualified} where tenant_id = $1${where}`, params);
      }),
    count: (tenantId, filter) =>
      run(tenantId, async (executor) => {
        const params: unknown[] = [tenantId];
        const where = filterSql(filter, params);
        const result = await executor.query(
          `select count(*)::int as count from ${table.qualified} where tenant_id = $1${where}`,
          params,
        );
        return Number((result.rows[0] as { count: number | string }).count);
      }),
    purgeTenant: (tenantId) =>
      run(tenantId, async (executor) => {
        await executor.query(`delete from ${table.qualified} where tenant_id = $1`, [tenantId]);
      }),
    async close() {
      const database = embedded;
      embedded = undefined;
      ready.clear();
      if (database !== undefined) await (await database).close();
    },
  });
}
