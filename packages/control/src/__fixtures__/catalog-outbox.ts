import type { Catalog } from '@mt-paas/db';
import { createOutbox, type Outbox } from '@mt-paas/marketplace';

/**
 * `@mt-paas/marketplace`'s real catalog outbox (`createOutbox`), with one switch to make the next
 * `enqueue` throw (to check what commits with it).
 */
export function catalogOutbox(catalog: Pick<Catalog, 'driver' | 'schema'>): Outbox & { failNext: boolean } {
  const real = createOutbox({ driver: catalog.driver, schema: catalog.schema });
  const outbox: Outbox & { failNext: boolean } = {
    ...real,
    failNext: false,
    async enqueue(messages, options) {
      if (outbox.failNext) {
        outbox.failNext = false;
        throw new Error('outbox unavailable');
      }
      return real.enqueue(messages, options);
    },
  };
  return outbox;
}
