import type pg from 'pg';
import { transactionStatus } from './driver.js';
import { nodePgTransaction, type RelationalSchema, type TenantTransaction } from './unit-of-work.js';

/** A transaction on the app connection with no tenant setting; always rolled back. For tests and checks. */
export async function runUnscopedOnClient<T, TSchema extends Record<string, unknown> = Record<string, never>>(
  client: pg.PoolClient,
  fn: (tx: TenantTransaction<TSchema>) => T | Promise<T>,
  relational?: RelationalSchema,
): Promise<T> {
  let discard: Error | undefined;
  const onClientError = (error: Error) => {
    discard ??= error;
  };
  client.on('error', onClientError);
  try {
    await client.query('BEGIN');
    const tx = nodePgTransaction<TSchema>(client, relational);
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
