import type { Catalog, SqlSession } from '@mt-paas/db';
import type { MarketMessage, MarketOutbox } from '../market.js';

/**
 * A stand-in for `@mt-paas/marketplace`'s `createOutbox()` with the same signature: inserts the messages
 * into the catalog `outbox` table (`ON CONFLICT (event_id) DO NOTHING`), inside the caller's transaction
 * when `executor` is given, and reports `stats()`.
 */
export function catalogOutbox(catalog: Pick<Catalog, 'driver' | 'schema'>): MarketOutbox & {
  /** Makes the next `enqueue` throw (to check what commits with it). */
  failNext: boolean;
} {
  const table = `"${catalog.schema}".outbox`;
  const outbox = {
    failNext: false,
    async enqueue(messages: readonly MarketMessage[], options: { executor?: SqlSession } = {}) {
      if (outbox.failNext) {
        outbox.failNext = false;
        throw new Error('outbox unavailable');
      }
      const executor = options.executor ?? catalog.driver;
      let added = 0;
      for (const message of messages) {
        const { rows } = await executor.query(
          `INSERT INTO ${table} (event_id, tenant_id, type, payload) VALUES ($1, $2, $3, $4::jsonb)
           ON CONFLICT (event_id) DO NOTHING RETURNING event_id`,
          [message.id, message.tenantId ?? null, message.type, JSON.stringify(message.payload)],
        );
        added += rows.length;
      }
      return added;
    },
    async stats() {
      const { rows } = await catalog.driver.query<{ pending: string; oldest: string | number | null }>(
        `SELECT count(*) AS pending, extract(epoch FROM now() - min(created_at)) AS oldest
         FROM ${table} WHERE delivered_at IS NULL`,
      );
      const oldest = rows[0]?.oldest;
      return {
        pending: Number(rows[0]?.pending ?? 0),
        oldestPendingAgeSeconds: oldest === null || oldest === undefined ? null : Number(oldest),
      };
    },
  };
  return outbox;
}
