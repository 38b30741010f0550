import { NodePgSession, NodePgTransaction } from 'drizzle-orm/node-postgres';
import type { PgDialect } from 'drizzle-orm/pg-core';
import type pg from 'pg';
import { transactionStatus } from './driver.js';
import type { RelationalSchema, TenantTransaction } from './unit-of-work.js';

/** A transaction on the app connection with no tenant setting; always rolled back. For tests and checks. */
export async function runUnscopedOnClient<T, TSchema extends Record<string, unknown> = Record<string, never>>(
  client: pg.PoolClient,
  fn: (tx: TenantTransaction<TSchema>) => T | Promise<T>,
  dialect: PgDialect,
  relational?: RelationalSchema,
): Promise<T> {
  let discard: Error | undefined;
  const onClientError = (error: Error) => {
    discard ??= error;
  };
  client.on('error', onClientError);
  try {
    await client.query('BEGIN');
    const session = new NodePgSession(client as never, dialect, relational as never, {});
    const tx = new NodePgTransaction(
      dialect,
      session,
      relational as never,
      0,
    ) as unknown as TenantTransaction<TSchema>;
    try {
      return await fn(tx);
    } finally {
      await client.query('ROLLBACK').catch((error: Error) => {
        discard = error;
      });
    }
  } finally {
    if (discard === undefined && transactionStatus(client) !== 'I')
      discard = new Error('connection state unknown');
    client.removeListener('error', onClientError);
    client.release(discard);
  }
}
