import { MtPaasError } from '@mt-paas/context';
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { mapStorageError } from './storage-errors.js';

/** Rows of one statement. */
export interface SqlRows<R> {
  rows: R[];
}

/** Runs SQL on one connection (inside a transaction when handed out by {@link SqlDriver.transaction}). */
export interface SqlSession {
  /** One statement, with `$1` parameters. */
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<SqlRows<R>>;
  /** Several `;`-separated statements without parameters (simple protocol). */
  exec(text: string): Promise<void>;
}

/**
 * What this package uses of a PGlite transaction (`@electric-sql/pglite`'s `Transaction` fits it).
 * Declared here so that the types of `@mt-paas/db` do not need the optional peer `@electric-sql/pglite`.
 */
export interface PgliteTransactionLike {
  query<R>(query: string, params?: unknown[]): Promise<{ rows: R[] }>;
  exec(query: string): Promise<unknown>;
}

/**
 * What this package uses of a PGlite instance: an `@electric-sql/pglite` `PGlite` (0.5.14) fits it.
 * Declared structurally so that a vendor on Postgres needs no `@electric-sql/pglite` types, even with
 * `skipLibCheck: false`; pass a real `PGlite` (anything else is not supported).
 */
export interface PgliteInstance extends PgliteTransactionLike {
  transaction<T>(callback: (tx: PgliteTransactionLike) => Promise<T>): Promise<T>;
  readonly closed: boolean;
  close(): Promise<void>;
}

/** A Postgres server (node-postgres pool) or an embedded PGlite database, as the catalog and migrations use it. */
export interface SqlDriver extends SqlSession {
  readonly kind: 'pg' | 'pglite';
  /** drizzle over the whole driver (not tenant-scoped). */
  readonly db: PgDatabase<PgQueryResultHKT>;
  /** Runs `fn` in one transaction on one connection; rolls back when it throws. */
  transaction<T>(fn: (session: SqlSession) => Promise<T>): Promise<T>;
  /** The node-postgres pool (`kind: 'pg'`). */
  readonly pool?: pg.Pool;
  /** The PGlite instance (`kind: 'pglite'`). */
  readonly pglite?: PgliteInstance;
  /** Closes the pool / the PGlite instance when this driver opened it. */
  close(): Promise<void>;
}

/** Options of {@link createPgDriver}. */
export interface PgDriverOptions {
  /** Postgres URL. Ignored when `pool` is given. */
  connectionString?: string;
  /** Bring your own pool (it is not closed by `close()`). */
  pool?: pg.Pool;
  /** Pool size when the driver creates the pool. @default 10 */
  max?: number;
}

/** A driver over a node-postgres pool. */
export function createPgDriver(options: PgDriverOptions): SqlDriver {
  const owned = options.pool === undefined;
  const pool =
    options.pool ??
    new pg.Pool({
      connectionString: options.connectionString,
      max: options.max ?? 10,
      idleTimeoutMillis: 10_000,
    });
  if (owned) pool.on('error', () => {});
  const db = drizzleNodePg(pool) as unknown as PgDatabase<PgQueryResultHKT>;
  const query = async <R>(text: string, params?: readonly unknown[]): Promise<SqlRows<R>> => {
    try {
      const result = await pool.query(text, params as unknown[] | undefined);
      return { rows: result.rows as R[] };
    } catch (error) {
      throw mapStorageError(error, 'query');
    }
  };
  return {
    kind: 'pg',
    db,
    pool,
    query,
    async exec(text) {
      await query(text);
    },
    async transaction(fn) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        throw mapStorageError(error, 'connect');
      }
      let failure: unknown;
      const onClientError = (error: Error) => {
        failure ??= error;
      };
      client.on('error', onClientError);
      try {
        await client.query('BEGIN');
        const session: SqlSession = {
          async query(text, params) {
            const result = await client.query(text, params as unknown[] | undefined);
            return { rows: result.rows };
          },
          async exec(text) {
            await client.query(text);
          },
        };
        let result: Awaited<ReturnType<typeof fn>>;
        try {
          result = await fn(session);
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {});
          throw error;
        }
        const commit = await client.query('COMMIT');
        if (commit.command === 'ROLLBACK') {
          throw new MtPaasError(
            'INTERNAL',
            'The transaction was aborted by an earlier error (caught inside the callback) and rolled back: let the error propagate, or use a savepoint to recover from it.',
          );
        }
        return result;
      } catch (error) {
        throw mapStorageError(error, 'transaction');
      } finally {
        // A client left inside a transaction (or whose state is unknown) is discarded, never reused.
        client.removeListener('error', onClientError);
        client.release(
          transactionStatus(client) === 'I' && failure === undefined ? undefined : toError(failure),
        );
      }
    },
    async close() {
      if (owned) await pool.end();
    },
  };
}

/** A driver over a PGlite instance (one connection; statements are serialised by PGlite). */
export async function createPgliteDriver(
  pglite: PgliteInstance,
  options: { owned?: boolean } = {},
): Promise<SqlDriver> {
  const { drizzle } = await import('drizzle-orm/pglite');
  const db = drizzle(pglite as never) as unknown as PgDatabase<PgQueryResultHKT>;
  return {
    kind: 'pglite',
    db,
    pglite,
    async query<R>(text: string, params?: readonly unknown[]) {
      const result = await pglite.query<R>(text, params as unknown[] | undefined);
      return { rows: result.rows };
    },
    async exec(text) {
      await pglite.exec(text);
    },
    transaction(fn) {
      return pglite.transaction((tx) =>
        fn({
          async query<R>(text: string, params?: readonly unknown[]) {
            const result = await tx.query<R>(text, params as unknown[] | undefined);
            return { rows: result.rows };
          },
          async exec(text) {
            await tx.exec(text);
          },
        }),
      );
    },
    async close() {
      if (options.owned === true && !pglite.closed) await pglite.close();
    },
  };
}

/** Options of {@link openEmbeddedDatabase}. */
export interface EmbeddedDatabaseOptions {
  /**
   * Where PGlite keeps its files; `'memory'` keeps everything in memory (lost on exit).
   * @default '.data/pglite'
   */
  dataDir?: string;
}

/**
 * Opens the embedded PGlite database (real Postgres in WASM) used when no database URL is configured.
 * Needs the optional peer dependency `@electric-sql/pglite` (0.5.14).
 *
 * @throws MtPaasError `CONFIG_INVALID` when `@electric-sql/pglite` is not installed.
 */
export async function openEmbeddedDatabase(options: EmbeddedDatabaseOptions = {}): Promise<SqlDriver> {
  let module: typeof import('@electric-sql/pglite');
  try {
    module = await import('@electric-sql/pglite');
  } catch (error) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'No database URL is configured and the embedded database is not installed: run `pnpm add @electric-sql/pglite@0.5.14`, or set a Postgres URL.',
      { cause: error },
    );
  }
  const dataDir = options.dataDir ?? '.data/pglite';
  if (dataDir !== 'memory') {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(dataDir, { recursive: true });
  }
  const pglite = await module.PGlite.create(dataDir === 'memory' ? undefined : dataDir);
  return createPgliteDriver(pglite, { owned: true });
}

/** The server's last reported transaction status of a pg client: `I` idle, `T` in a transaction, `E` failed transaction. */
export function transactionStatus(client: pg.ClientBase): string | undefined {
  const status = (client as unknown as { _txStatus?: string | null })._txStatus;
  return status ?? undefined;
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error('connection state unknown');
}
