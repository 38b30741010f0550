import { randomUUID } from 'node:crypto';
import type { Catalog } from '@mt-paas/db';
import type { MarketMessage, MarketOutbox } from '../market.js';

/**
 * A stand-in for `@mt-paas/marketplace`'s catalog outbox writer: inserts the message into the catalog
 * `outbox` table, inside the caller's transaction when `executor` is one (as the real writer does).
 */
export function catalogOutbox(catalog: Pick<Catalog, 'driver' | 'tables'>): MarketOutbox & {
  /** Makes the next `enqueue` throw (to check what commits with it). */
  failNext: boolean;
} {
  const outbox = {
    failNext: false,
    async enqueue(message: MarketMessage, options: { executor?: unknown } = {}) {
      if (outbox.failNext) {
        outbox.failNext = false;
        throw new Error('outbox unavailable');
      }
      const executor = (options.executor ?? catalog.driver.db) as typeof catalog.driver.db;
      await executor.insert(catalog.tables.outbox).values({
        eventId: message.eventId ?? randomUUID(),
        tenantId: message.tenantId ?? null,
        type: message.type,
        payload: message.payload,
      });
    },
  };
  return outbox;
}
