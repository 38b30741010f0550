import { NodePgSession, NodePgTransaction } from 'drizzle-orm/node-postgres';
import type { PgDialect } from 'drizzle-orm/pg-core';
import type pg from 'pg';
import { transactionStatus } from './driver.js';
import type { TenantTransaction } from './unit-of-work.js';

/** A transaction on the app connection with no tenant setting; always rolled back. For tests and checks. */
export async function runUnscopedOnClient<T>(
  client: pg.PoolClient,
  fn: (tx: TenantTransaction) => T | Promise<T>,
  dialect: PgDialect,
): Promise<T> {
  let discard: Error | undefined;
  const onClientError = (error: Error) => {
    discard ??= error;
  };
  client.on('error', onClientError);
  try {
    await client.query('BEGIN');
    const session = new NodePgSession(client as never, dialect, undefined, {});
    const tx = new NodePgTransaction(dialect, session, undefined, 0) as unknown as TenantTransaction;
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
