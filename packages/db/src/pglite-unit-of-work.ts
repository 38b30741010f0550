import type { PGlite } from '@electric-sql/pglite';
import { PgDialect } from 'drizzle-orm/pg-core';
import { PgliteSession, PgliteTransaction } from 'drizzle-orm/pglite';
import { quoteIdentifier } from './sql-text.js';
import {
  abortedError,
  type RelationalSchema,
  type Scope,
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
 * PGlite unit of work: one PGlite transaction, `set_config(..., true)` and `SET LOCAL ROLE <app role>`
 * (PGlite's own user is a superuser, so RLS only applies once the transaction switches role).
 */
export async function runOnPglite<T, TSchema extends Record<string, unknown> = Record<string, never>>(
  pglite: PGlite,
  scope: Scope,
  fn: (tx: TenantTransaction<TSchema>) => T | Promise<T>,
  stats?: UnitStats,
  relational?: RelationalSchema,
): Promise<T> {
  return pglite.transaction(async (transaction) => {
    await transaction.exec(scopeSql(scope, { begin: false }));
    if (stats) stats.statements += 1;
    const tx = pgliteTransaction<TSchema>(transaction, relational);
    const value = await fn(tx);
    // COMMIT of an aborted transaction silently rolls back: fail instead, as on a Postgres server.
    await transaction.query('SELECT 1').catch((error: unknown) => {
      throw abortedError(error);
    });
    return value;
  });
}

/** A PGlite transaction as the app role with no tenant set; always rolled back. */
export async function runUnscopedOnPglite<T, TSchema extends Record<string, unknown> = Record<string, never>>(
  pglite: PGlite,
  role: string,
  fn: (tx: TenantTransaction<TSchema>) => T | Promise<T>,
  relational?: RelationalSchema,
): Promise<T> {
  let value: T | undefined;
  await pglite.transaction(async (transaction) => {
    await transaction.exec(`SET LOCAL ROLE ${quoteIdentifier(role)}`);
    const tx = pgliteTransaction<TSchema>(transaction, relational);
    value = await fn(tx);
    await transaction.rollback();
  });
  return value as T;
}
