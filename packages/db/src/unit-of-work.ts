import { MtPaasError, type TenantId } from '@mt-paas/context';
import {
  createTableRelationsHelpers,
  type ExtractTablesWithRelations,
  extractTablesRelationalConfig,
  type TablesRelationalConfig,
} from 'drizzle-orm';
import { NodePgSession, NodePgTransaction } from 'drizzle-orm/node-postgres';
import { PgDialect, type PgQueryResultHKT, type PgTransaction } from 'drizzle-orm/pg-core';
import type pg from 'pg';
import { transactionStatus } from './driver.js';
import { forgetPreparedStatements, isResetByUs, markReset, RESET_SQL } from './session-reset.js';
import { quoteIdentifier, quoteLiteral } from './sql-text.js';
import { mapStorageError } from './storage-errors.js';
import { TENANT_SETTING } from './tenant-table.js';

/**
 * The drizzle transaction a unit of work hands to its callback. Every statement runs inside one
 * transaction scoped to one tenant; `tx.transaction()` nests with savepoints, `tx.rollback()` rolls back.
 */
export type TenantTransaction<TSchema extends Record<string, unknown> = Record<string, never>> =
  PgTransaction<PgQueryResultHKT, TSchema, ExtractTablesWithRelations<TSchema>>;

/** drizzle's relational config of a schema (for `tx.query.*`), computed once per tenant db. */
export interface RelationalSchema {
  fullSchema: Record<string, unknown>;
  schema: TablesRelationalConfig;
  tableNamesMap: Record<string, string>;
}

/** Builds the relational config drizzle's sessions take from a schema module (`import * as schema`). */
export function relationalSchemaOf(
  schema: Record<string, unknown> | undefined,
): RelationalSchema | undefined {
  if (schema === undefined) return undefined;
  const config = extractTablesRelationalConfig(schema, createTableRelationsHelpers);
  return { fullSchema: schema, schema: config.tables, tableNamesMap: config.tableNamesMap };
}

/** What a unit of work sets, transaction-locally, before the callback's first statement. */
export interface Scope {
  tenantId: TenantId;
  /** Schema mode: the tenant's schema (becomes the only entry of `search_path`). */
  schema?: string;
  /** PGlite: `SET LOCAL ROLE` to this role (PGlite's own user is a superuser). */
  role?: string;
  /** PGlite: its session user; a unit that changes it (SET SESSION AUTHORIZATION) fails. */
  sessionUser?: string;
}

/**
 * The scoping statement(s), sent as ONE simple-protocol query. Safe to build as text: the tenant id
 * passed the tenant id grammar (`[a-z][a-z0-9_]*`), schema and role names were validated as identifiers,
 * and all of them are quoted on top of that.
 */
export function scopeSql(scope: Scope, options: { begin: boolean }): string {
  const settings = [`set_config('${TENANT_SETTING}', ${quoteLiteral(scope.tenantId)}, true)`];
  if (scope.schema !== undefined) {
    settings.push(`set_config('search_path', ${quoteLiteral(quoteIdentifier(scope.schema))}, true)`);
  }
  let text = `${options.begin ? 'BEGIN; ' : ''}SELECT ${settings.join(', ')}`;
  if (scope.role !== undefined) text += `; SET LOCAL ROLE ${quoteIdentifier(scope.role)}`;
  return text;
}

/** Marker of the scope check's error (see {@link checkSql}). */
export const SCOPE_CHANGED_MARKER = 'mt_paas_scope_changed';

/**
 * The condition under which a unit of work still has the scope it started with: the same
 * `app.tenant_id`, the same `search_path` (schema mode) and no `SET ROLE` (`current_user = session_user`).
 */
export function scopeHeldCondition(scope: Scope): string {
  const conditions = [
    `current_setting('${TENANT_SETTING}', true) IS NOT DISTINCT FROM ${quoteLiteral(scope.tenantId)}`,
    'current_user = session_user',
  ];
  if (scope.schema !== undefined) {
    conditions.push(`current_setting('search_path') = ${quoteLiteral(quoteIdentifier(scope.schema))}`);
  }
  return conditions.join(' AND ');
}

/**
 * The statement sent with COMMIT (one simple query, `check; COMMIT`): it checks that the unit did not
 * rescope itself (raw `set_config('app.tenant_id', …)`, `set_config('search_path', …)`, `SET ROLE`). When
 * it did, the check raises an error (a failed cast that carries {@link SCOPE_CHANGED_MARKER}), so the
 * COMMIT behind it is skipped and the transaction rolled back. It only sees the state at the end of the
 * unit: a unit that changed the scope and changed it back is not detected.
 */
export function checkSql(scope: Scope): string {
  return `SELECT CASE WHEN ${scopeHeldCondition(scope)} THEN 1 ELSE ('${SCOPE_CHANGED_MARKER}: ' || coalesce(current_setting('${TENANT_SETTING}', true), '') || ' ' || current_user)::int END`;
}

/** The unit of work changed its own tenant scope (see {@link checkSql}). */
export function scopeChangedError(cause?: unknown): MtPaasError {
  return new MtPaasError(
    'INTERNAL',
    "The tenant unit of work changed its own scope (app.tenant_id, search_path or role) and was rolled back. Never call set_config('app.tenant_id', …), set search_path or SET ROLE inside run(): open another unit with forTenant(id).run() instead.",
    cause === undefined ? undefined : { cause },
  );
}

export function isScopeChanged(error: unknown): boolean {
  return error instanceof Error && error.message.includes(SCOPE_CHANGED_MARKER);
}

const dialect = new PgDialect();

/** Counts what a unit of work sent, for tests and the bench. */
export interface UnitStats {
  /** Queries sent on the connection (scoping, callback statements, COMMIT/ROLLBACK). */
  statements: number;
}

type Thenable<T> = {
  then: (resolve: (value: T) => unknown, reject: (reason: unknown) => unknown) => unknown;
};

function isLazyThenable<T>(value: unknown): value is Thenable<T> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !(value instanceof Promise) &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** The unit of work's transaction was aborted by a statement whose error the callback caught. */
export function abortedError(cause?: unknown): MtPaasError {
  return new MtPaasError(
    'INTERNAL',
    'The tenant transaction was rolled back because a statement inside it failed (the error was caught in the callback). Let the error propagate, or use tx.transaction() for a savepoint you can recover from.',
    cause === undefined ? undefined : { cause },
  );
}

/** A drizzle transaction over `client` (a checked-out pg client, or a proxy of one); BEGIN is the caller's. */
export function nodePgTransaction<TSchema extends Record<string, unknown>>(
  client: Pick<pg.ClientBase, 'query'> | { query: (config: unknown, values?: unknown) => unknown },
  relational: RelationalSchema | undefined,
): TenantTransaction<TSchema> {
  const session = new NodePgSession(client as never, dialect, relational as never, {});
  return new NodePgTransaction(
    dialect,
    session,
    relational as never,
    0,
  ) as unknown as TenantTransaction<TSchema>;
}

function endedError(): MtPaasError {
  return new MtPaasError(
    'INTERNAL',
    'This tenant transaction has ended: do not keep `tx` beyond the callback of run().',
  );
}

/**
 * Runs `fn` in one transaction on a checked-out node-postgres client, scoped to `scope`, then
 * releases the client. The client is discarded (`release(error)`) whenever its state is not a
 * clean idle connection afterwards, so no tenant setting or open transaction can reach the next user.
 *
 * Session state: `DISCARD ALL` follows COMMIT / ROLLBACK on the wire (same write when pipelined), and
 * the client returns to the pool once it is answered; a client this package did not reset at the end
 * of its previous checkout gets `DISCARD ALL` before BEGIN, in the same write as the scope.
 * Before COMMIT a check (same write) makes the unit fail when it changed its own scope.
 *
 * Round trips: on a pipelining client (`pipeline: true`) the scoping query travels with the first
 * statement; a callback that returns an unawaited drizzle query also gets its COMMIT pipelined
 * (one round trip in all). Otherwise: 1 (BEGIN + set_config) + statements + 1 (COMMIT), and the
 * reset is one more round trip before the connection returns to the pool (not before the unit resolves).
 */
export async function runOnClient<T, TSchema extends Record<string, unknown> = Record<string, never>>(
  client: pg.PoolClient,
  scope: Scope,
  fn: (tx: TenantTransaction<TSchema>) => T | Promise<T>,
  stats?: UnitStats,
  relational?: RelationalSchema,
): Promise<T> {
  const pipelined = (client as unknown as { pipeline?: boolean }).pipeline === true;
  let ended = false;
  let discard: Error | undefined;
  let queries = 0;
  const send = (config: unknown, values?: unknown) => {
    queries += 1;
    if (stats) stats.statements += 1;
    return client.query(config as pg.QueryConfig, values as unknown[] | undefined);
  };
  // Pipelined: the socket is corked until the callback's first statement is queued (for an unawaited
  // drizzle query, until its COMMIT is), so scope and statement(s) leave in one TCP write.
  let holdCork = false;
  const proxy = {
    query(config: unknown, values?: unknown) {
      if (ended) return Promise.reject(endedError());
      const sent = send(config, values);
      // Statements queued in the same tick (e.g. Promise.all) join the same write.
      if (corked && !holdCork) process.nextTick(uncork);
      return sent;
    },
  };
  // A checked-out client's 'error' event is ours to handle: a dead connection is discarded, never thrown.
  const onClientError = (error: Error) => {
    discard ??= error;
  };
  client.on('error', onClientError);
  let setupError: unknown;
  let checkError: unknown;
  let commitPromise: Promise<pg.QueryResult> | undefined;
  let resetPromise: Promise<unknown> | undefined;
  const stream = pipelined
    ? (client as unknown as { connection?: { stream?: { cork?: () => void; uncork?: () => void } } })
        .connection?.stream
    : undefined;
  let corked = false;
  const cork = () => {
    if (!corked && typeof stream?.cork === 'function' && typeof stream.uncork === 'function') {
      stream.cork();
      corked = true;
    }
  };
  const uncork = () => {
    if (corked) {
      corked = false;
      stream?.uncork?.();
    }
  };
  /**
   * Scope check + COMMIT as one simple query, then the session reset (pipelined: in the same write).
   * When the check fails (the unit changed its scope, or the transaction was aborted by a swallowed
   * error) the COMMIT in the same query is skipped: ROLLBACK, then the reset, follow (failure path only).
   */
  const sendCommit = () => {
    cork();
    const combined = send(`${checkSql(scope)}; COMMIT`) as unknown as Promise<
      pg.QueryResult | pg.QueryResult[]
    >;
    const earlyReset = pipelined ? send(RESET_SQL) : undefined;
    earlyReset?.catch(() => {});
    commitPromise = combined.then(
      (results) => (Array.isArray(results) ? results.at(-1)! : results),
      async (error: unknown) => {
        checkError = error;
        await send('ROLLBACK');
        return { command: 'ROLLBACK' } as pg.QueryResult;
      },
    );
    resetPromise = commitPromise.then(async () => {
      if (earlyReset !== undefined && checkError === undefined) return earlyReset;
      // Not pipelined, or the early reset ran inside the aborted transaction (and failed): reset now.
      await earlyReset?.catch(() => {});
      return send(RESET_SQL);
    });
    resetPromise.catch(() => {});
  };
  const sendReset = () => {
    resetPromise = send(RESET_SQL);
    resetPromise.catch(() => {});
  };
  const setupFailed = (error: unknown) => {
    setupError ??= error;
  };
  try {
    cork();
    let reset: Promise<void> | undefined;
    if (!isResetByUs(client)) {
      reset = send(RESET_SQL).then(() => undefined, setupFailed);
      forgetPreparedStatements(client);
    }
    const setup = send(scopeSql(scope, { begin: true })).then(() => undefined, setupFailed);
    if (!pipelined) {
      await reset;
      await setup;
      if (setupError !== undefined) throw setupError;
    }
    const tx = nodePgTransaction<TSchema>(proxy, relational);
    let value: T;
    try {
      let result: T | Promise<T>;
      try {
        result = fn(tx);
      } catch (error) {
        uncork();
        throw error;
      }
      if (pipelined && isLazyThenable<T>(result)) {
        // An unawaited drizzle query: it is the callback's last statement, so COMMIT can follow it on the wire.
        const before = queries;
        holdCork = true;
        const valuePromise = new Promise<T>((resolve, reject) => {
          result.then(resolve, reject);
        });
        holdCork = false;
        // Not after a pre-reset: should that reset fail, nothing may have been committed.
        if (queries === before + 1 && reset === undefined) {
          ended = true;
          sendCommit();
        }
        uncork();
        value = await valuePromise;
      } else {
        // `await query` in the callback queues its statement a microtask later: the first statement
        // uncorks (see proxy.query); a callback that settles without one uncorks here.
        try {
          value = await result;
        } finally {
          uncork();
        }
      }
    } catch (error) {
      uncork();
      ended = true;
      if (commitPromise === undefined) {
        cork();
        const rollback = send('ROLLBACK');
        sendReset();
        uncork();
        await rollback.catch((rollbackError: unknown) => {
          discard = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        });
      } else {
        await commitPromise.catch((commitError: unknown) => {
          discard = commitError instanceof Error ? commitError : new Error(String(commitError));
        });
      }
      await reset;
      await setup;
      throw error;
    }
    ended = true;
    await reset;
    await setup;
    if (setupError !== undefined) {
      if (commitPromise !== undefined) await commitPromise.catch(() => {});
      throw setupError;
    }
    if (commitPromise === undefined) {
      sendCommit();
      uncork();
    }
    const commit = await commitPromise!;
    if (commit.command === 'ROLLBACK') {
      throw isScopeChanged(checkError) ? scopeChangedError(checkError) : abortedError();
    }
    return value;
  } catch (error) {
    discard ??= setupError instanceof Error ? setupError : undefined;
    throw mapStorageError(error, 'tenant unit of work');
  } finally {
    uncork();
    ended = true;
    // The client returns to the pool once its session reset is answered (the unit does not wait for it).
    const finish = () => {
      if (discard === undefined && transactionStatus(client) !== 'I') {
        discard = new Error('connection left inside a transaction');
      }
      if (discard === undefined) markReset(client);
      client.removeListener('error', onClientError);
      client.release(discard);
    };
    if (resetPromise === undefined) {
      discard ??= new Error('session not reset');
      finish();
    } else {
      resetPromise.then(finish, (error: unknown) => {
        discard ??= error instanceof Error ? error : new Error(String(error));
        finish();
      });
    }
  }
}
