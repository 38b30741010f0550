import { ADAPTERS } from './__fixtures__/apps.js';
import { describeConformance } from './__fixtures__/conformance.js';
import { memoryDirectory } from './__fixtures__/tenants.js';

/**
 * The conformance suite with the embedded defaults: an in-memory directory and the in-process rate
 * limit and quota stores (no Postgres, no Redis). The same cases run on real servers in
 * `conformance.int.test.ts`.
 */
describeConformance(ADAPTERS, async () => ({
  directory: memoryDirectory(),
  async close() {},
}));
