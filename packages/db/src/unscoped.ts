import type pg from 'pg';
import { transactionStatus } from './driver.js';
import { forgetPreparedStatements, markReset, RESET_SQL } from './session-reset.js';
import { TENANT_SETTING } from './tenant-table.js';
import { nodePgTransaction, type RelationalSchema, type TenantTransaction } from './unit-of-work.js';

/**
 * A transaction on the app connection with no tenant setting, for tests and checks: the session is
 * reset first (`DISCARD ALL`, so nothing a previous user left — session-level `app.tenant_id`, role,
 * temporary tables, cursors — applies), `app.tenant_id` is set to '' for the transaction, the
 * transaction is always rolled back and the session reset again.
 */
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
    forgetPreparedStatements(client);
    await client.query(RESET_SQL).catch((error: Error) => {
      discard = error;
      throw error;
    });
    await client.query(`BEGIN; SELECT set_config('${TENANT_SETTING}', '', true)`);
    const tx = nodePgTransaction<TSchema>(client, relational);
    try {
      return await fn(tx);
    } finally {
      await client.query('ROLLBACK').catch((error: Error) => {
        discard = error;
      });
      await client.query(RESET_SQL).catch((error: Error) => {
        discard ??= error;
      });
    }
  } finally {
    if (discard === undefined && transactionStatus(client) !== 'I')
      discard = new Error('connection state unknown');
    if (discard === undefined) markReset(client);
    client.removeListener('error', onClientError);
    client.release(discard);
  }
}
