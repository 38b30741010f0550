import { ADAPTERS } from './__fixtures__/apps.js';
import { describeMarketplaceConformance } from './__fixtures__/conformance.js';
import { createMemoryReceiptStore, type ReceiptStore } from './receipts.js';

/** The conformance suite with the in-memory receipt store (the Postgres run is conformance.int.test.ts). */
describeMarketplaceConformance(ADAPTERS, async () => {
  const inner = createMemoryReceiptStore();
  let count = 0;
  const receipts: ReceiptStore = {
    async once(key, apply, stale) {
      const outcome = await inner.once(key, apply, stale);
      if (outcome.result !== 'duplicate') count++;
      return outcome;
    },
  };
  return { receipts, receiptCount: async () => count, close: async () => {} };
});
