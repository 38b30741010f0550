import type { PGlite } from '@electric-sql/pglite';
import { PgDialect } from 'drizzle-orm/pg-core';
import { PgliteSession, PgliteTransaction } from 'drizzle-orm/pglite';
import type { PgliteInstance } from './driver.js';
import { quoteIdentifier, quoteLiteral } from './sql-text.js';
import { TENANT_SETTING } from './tenant-table.js';
import {
  abortedError,
  type RelationalSchema,
  type Scope,
  scopeChangedError,
  scopeHeldCondition,
  scopeSql,
  type TenantTransaction,
  type UnitStats,
} from './unit-of-work.js';

const dialect = new PgDialect();

function pgliteTransaction<TSchema extends Record<string, unknown>>(
  transaction: unknown,
  relational: RelationalSchema | undefined,
): TenantTransaction<TSchema> {
  const session = new PgliteSession(transaction as never, dialect, relational as never, {});
  return new PgliteTransaction(
    dialect,
    session,
    relational as never,
    0,
  ) as unknown as TenantTransaction<TSchema>;
}

/**
 * What a PGlite unit leaves at session level, removed inside a transaction (PGlite has one session, and
 * `DISCARD ALL` cannot run in a transaction block): WITH HOLD cursors, LISTEN, session advisory locks,
 * temporary tables, prepared statements and settings (`RESET ALL` also resets `role`).
 */
export const PGLITE_SESSION_CLEANUP =
  'CLOSE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES; DEALLOCATE ALL; RESET ALL';

type PgliteTx = Parameters<Parameters<PGlite['transaction']>[0]>[0];

/**
 * The transaction handed to drizzle, checking after every statement that the unit still runs as the app
 * role with its own tenant (and schema): PGlite's only user is a superuser, so a `RESET ROLE`,
 * `SET ROLE`, `SET SESSION AUTHORIZATION` or `set_config('app.tenant_id', …)` inside the unit fails the
 * unit before its next statement runs.
 */
function guarded(transaction: PgliteTx, condition: string, onBroken: () => void): PgliteTx {
  const verify = async () => {
    let held: boolean | undefined;
    try {
      held = (await transaction.query<{ held: boolean }>(`SELECT (${condition}) AS held`)).rows[0]?.held;
    } catch (error) {
      throw abortedError(error);
    }
    if (held !== true) {
      onBroken();
      throw scopeChangedError();
    }
  };
  return {
    ...transaction,
    query: async (...args: Parameters<PgliteTx['query']>) => {
      const result = await transaction.query(...args);
      await verify();
      return result;
    },
    exec: async (...args: Parameters<PgliteTx['exec']>) => {
      const result = await transaction.exec(...args);
      await verify();
      return result;
    },
    rollback: () => transaction.rollback(),
    get closed() {
      return transaction.closed;
    },
  } as PgliteTx;
}

/** The scope condition on PGlite: the role is the app role (session_user is PGlite's superuser). */
function pgliteCondition(scope: Scope): string {
  return scopeHeldCondition(scope).replace(
    'current_user = session_user',
    `current_user = ${quoteLiteral(scope.role ?? '')}${scope.sessionUser === undefined ? '' : ` AND session_user = ${quoteLiteral(scope.sessionUser)}`}`,
  );
}

/**
 * PGlite unit of work: one PGlite transaction that first clears the session (see
 * {@link PGLITE_SESSION_CLEANUP}), then runs `set_config(..., true)` and `SET LOCAL ROLE <app role>`
 * (PGlite's own user is a superuser, so RLS only applies once the transaction switches role). After every
 * statement of the callback, and before COMMIT, it checks that the scope still holds (tenant,
 * search_path, `current_user` = app role): a unit that changed it fails and is rolled back. The session
 * is cleared again before COMMIT.
 */
export async function runOnPglite<T, TSchema extends Record<string, unknown> = Record<string, never>>(
  instance: PgliteInstance,
  scope: Scope,
  fn: (tx: TenantTransaction<TSchema>) => T | Promise<T>,
  stats?: UnitStats,
  relational?: RelationalSchema,
): Promise<T> {
  // The driver is only ever created over a real PGlite (its public type is structural).
  const pglite = instance as unknown as PGlite;
  const condition = pgliteCondition(scope);
  let broken = false;
  try {
    return await pglite.transaction(async (transaction) => {
      await transaction.exec(`${PGLITE_SESSION_CLEANUP}; ${scopeSql(scope, { begin: false })}`);
      if (stats) stats.statements += 1;
      const tx = pgliteTransaction<TSchema>(
        guarded(transaction, condition, () => {
          broken = true;
        }),
        relational,
      );
      const value = await fn(tx);
      // COMMIT of an aborted transaction silently rolls back: fail instead, as on a Postgres server.
      const held = await transaction
        .query<{ held: boolean }>(`SELECT (${condition}) AS held`)
        .catch((error: unknown) => {
          throw abortedError(error);
        });
      if (held.rows[0]?.held !== true) throw scopeChangedError();
      await transaction.exec(PGLITE_SESSION_CLEANUP);
      return value;
    });
  } catch (error) {
    // A rolled-back transaction undoes what it did at session level, except session advisory locks.
    await pglite.exec('SELECT pg_advisory_unlock_all()').catch(() => {});
    // drizzle wraps the guard's error in its "Failed query" error: report the scope change itself.
    throw broken ? scopeChangedError(error) : error;
  }
}

/** A PGlite transaction as the app role with no tenant set, on a cleared session; always rolled back. */
export async function runUnscopedOnPglite<T, TSchema extends Record<string, unknown> = Record<string, never>>(
  instance: PgliteInstance,
  role: string,
  fn: (tx: TenantTransaction<TSchema>) => T | Promise<T>,
  relational?: RelationalSchema,
  sessionUser?: string,
): Promise<T> {
  const pglite = instance as unknown as PGlite;
  let value: T | undefined;
  let broken = false;
  try {
    await pglite.transaction(async (transaction) => {
      await transaction.exec(
        `${PGLITE_SESSION_CLEANUP}; SELECT set_config('${TENANT_SETTING}', '', true); SET LOCAL ROLE ${quoteIdentifier(role)}`,
      );
      const tx = pgliteTransaction<TSchema>(
        guarded(
          transaction,
          `current_user = ${quoteLiteral(role)} AND current_setting('${TENANT_SETTING}', true) = ''${
            sessionUser === undefined ? '' : ` AND session_user = ${quoteLiteral(sessionUser)}`
          }`,
          () => {
            broken = true;
          },
        ),
        relational,
      );
      value = await fn(tx);
      await transaction.rollback();
    });
  } catch (error) {
    throw broken ? scopeChangedError(error) : error;
  } finally {
    await pglite.exec('SELECT pg_advisory_unlock_all()').catch(() => {});
  }
  return value as T;
}
