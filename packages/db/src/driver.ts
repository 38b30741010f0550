import { AsyncLocalStorage } from 'node:async_hooks';
import { MtPaasError } from '@mt-paas/context';
import { TransactionRollbackError } from 'drizzle-orm';
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

/**
 * A Postgres server (node-postgres pool) or an embedded PGlite database, as the catalog and migrations use it.
 *
 * **Ambient transaction.** While `transaction(fn)` runs, every call made through this driver from `fn`'s
 * async context — `query`, `exec`, `db` (drizzle, also a reference taken before), a nested
 * `transaction()` — runs in that transaction, on its connection. So code that is handed nothing but the
 * catalog (e.g. a marketplace handler calling `catalog.tenants.upsert`) commits or rolls back with the
 * transaction it is called in, on Postgres and on PGlite alike (on PGlite, which has one connection,
 * it would otherwise wait forever). Other async contexts are not affected: on Postgres they keep using
 * their own pooled connections. Tenant units of work (`createTenantDb(…).forTenant(…).run`) never join.
 */
export interface SqlDriver extends SqlSession {
  readonly kind: 'pg' | 'pglite';
  /** drizzle over the whole driver (not tenant-scoped); inside `transaction(fn)` it runs in that transaction. */
  readonly db: PgDatabase<PgQueryResultHKT>;
  /**
   * Runs `fn` in one transaction on one connection; rolls back when it throws. Called inside another
   * `transaction()` of this driver (same async context) it joins it as a savepoint: a throwing `fn`
   * rolls back to the savepoint only, and its writes commit only when the outer transaction commits.
   * Nested calls of one transaction run one after the other (a connection has one savepoint stack).
   */
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
  const ambient = new AmbientTransactions();
  const db = ambient.routedDb(drizzleNodePg(pool) as unknown as PgDatabase<PgQueryResultHKT>);
  const query = async <R>(text: string, params?: readonly unknown[]): Promise<SqlRows<R>> => {
    const frame = ambient.current();
    try {
      if (frame !== undefined) return await frame.session.query<R>(text, params);
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
      const outer = ambient.current();
      if (outer !== undefined) return ambient.savepoint(outer, fn);
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
        const frame = ambient.open(
          session,
          () => drizzleNodePg({ client }) as unknown as PgDatabase<PgQueryResultHKT>,
        );
        try {
          result = await ambient.run(frame, () => fn(session));
        } catch (error) {
          frame.closed = true;
          await client.query('ROLLBACK').catch(() => {});
          throw error;
        }
        frame.closed = true;
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
  const ambient = new AmbientTransactions();
  const db = ambient.routedDb(drizzle(pglite as never) as unknown as PgDatabase<PgQueryResultHKT>);
  return {
    kind: 'pglite',
    db,
    pglite,
    async query<R>(text: string, params?: readonly unknown[]) {
      const frame = ambient.current();
      if (frame !== undefined) return frame.session.query<R>(text, params);
      const result = await pglite.query<R>(text, params as unknown[] | undefined);
      return { rows: result.rows };
    },
    async exec(text) {
      const frame = ambient.current();
      if (frame !== undefined) return frame.session.exec(text);
      await pglite.exec(text);
    },
    transaction(fn) {
      const outer = ambient.current();
      if (outer !== undefined) return ambient.savepoint(outer, fn);
      return pglite.transaction(async (tx) => {
        const session: SqlSession = {
          async query<R>(text: string, params?: readonly unknown[]) {
            const result = await tx.query<R>(text, params as unknown[] | undefined);
            return { rows: result.rows };
          },
          async exec(text) {
            await tx.exec(text);
          },
        };
        const frame = ambient.open(
          session,
          () => drizzle({ client: tx as never }) as unknown as PgDatabase<PgQueryResultHKT>,
        );
        try {
          return await ambient.run(frame, () => fn(session));
        } finally {
          frame.closed = true;
        }
      });
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

/** One open transaction (or savepoint) of a driver, as seen by the async context that opened it. */
interface AmbientFrame {
  readonly session: SqlSession;
  readonly parent: AmbientFrame | undefined;
  /** drizzle over the transaction's connection (created on first use). */
  db(): PgDatabase<PgQueryResultHKT>;
  /** Nested savepoints of this frame run one after the other. */
  queue: Promise<unknown>;
  /** Set when the transaction/savepoint ended: work still holding the context falls back to the parent. */
  closed: boolean;
}

let savepointCounter = 0;

/**
 * Tracks, per driver and per async context (AsyncLocalStorage), the transaction `driver.transaction(fn)`
 * has open, so that calls through the driver made from `fn` run in it instead of on another connection.
 */
class AmbientTransactions {
  readonly #storage = new AsyncLocalStorage<AmbientFrame>();

  /** The innermost open frame of the calling async context. */
  current(): AmbientFrame | undefined {
    let frame = this.#storage.getStore();
    while (frame?.closed === true) frame = frame.parent;
    return frame;
  }

  open(session: SqlSession, makeDb: () => PgDatabase<PgQueryResultHKT>, parent?: AmbientFrame): AmbientFrame {
    let db: PgDatabase<PgQueryResultHKT> | undefined;
    return {
      session,
      parent,
      db: () => {
        db ??= makeDb();
        return db;
      },
      queue: Promise.resolve(),
      closed: false,
    };
  }

  run<T>(frame: AmbientFrame, fn: () => Promise<T>): Promise<T> {
    return this.#storage.run(frame, fn);
  }

  /** Runs `fn` in a savepoint of `outer`'s transaction (after earlier nested calls of `outer`). */
  savepoint<T>(outer: AmbientFrame, fn: (session: SqlSession) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      savepointCounter += 1;
      const name = `mt_paas_sp_${savepointCounter}`;
      await outer.session.exec(`SAVEPOINT ${name}`);
      const frame = this.open(outer.session, outer.db, outer);
      try {
        const result = await this.run(frame, () => fn(outer.session));
        frame.closed = true;
        await outer.session.exec(`RELEASE SAVEPOINT ${name}`);
        return result;
      } catch (error) {
        frame.closed = true;
        await outer.session.exec(`ROLLBACK TO SAVEPOINT ${name}`).catch(() => {});
        throw error;
      }
    };
    const next = outer.queue.then(run, run);
    outer.queue = next.catch(() => {});
    return next;
  }

  /**
   * `root` (drizzle over the pool / the PGlite instance), routed per call: inside a transaction of the
   * calling context the transaction's drizzle is used, and `db.transaction(fn)` becomes a savepoint.
   */
  routedDb(root: PgDatabase<PgQueryResultHKT>): PgDatabase<PgQueryResultHKT> {
    return new Proxy(root, {
      get: (target, property) => {
        const frame = this.current();
        const active = frame === undefined ? target : frame.db();
        if (frame !== undefined && property === 'transaction') {
          // drizzle's nested transaction, as a savepoint of the ambient one; `tx.rollback()` as drizzle's.
          return <T>(fn: (tx: PgDatabase<PgQueryResultHKT>) => Promise<T>) =>
            this.savepoint(frame, () => {
              const tx = Object.create(active) as PgDatabase<PgQueryResultHKT> & { rollback(): never };
              tx.rollback = () => {
                throw new TransactionRollbackError();
              };
              return fn(tx);
            });
        }
        const value = Reflect.get(active, property, active);
        return typeof value === 'function' ? value.bind(active) : value;
      },
    });
  }
}

/** The server's last reported transaction status of a pg client: `I` idle, `T` in a transaction, `E` failed transaction. */
export function transactionStatus(client: pg.ClientBase): string | undefined {
  const status = (client as unknown as { _txStatus?: string | null })._txStatus;
  return status ?? undefined;
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error('connection state unknown');
}
