// Bytes per cached tenant: the directory cache of @mt-paas/middleware in front of the Postgres catalog,
// heap measured after a forced GC before and after filling it. Run with --expose-gc; argv[2] is JSON
// { catalogUrl, steps } (cache sizes to measure at; tenants bench_00000, bench_00001 … in order).
// Prints one JSON line.
import { createCatalog } from '@mt-paas/db';
import { createCachedDirectory } from '@mt-paas/middleware';

const { catalogUrl, steps } = JSON.parse(process.argv[2]);
const tenantIds = Array.from(
  { length: steps.at(-1) },
  (_, index) => `bench_${String(index).padStart(5, '0')}`,
);
if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');
const catalog = await createCatalog({ connectionString: catalogUrl });
const cache = createCachedDirectory({ directory: catalog.directory, max: tenantIds.length + 1 });

const heap = () => {
  for (let index = 0; index < 3; index += 1) globalThis.gc();
  return process.memoryUsage().heapUsed;
};
// Warm the code paths (drizzle, pg, lru-cache) on one tenant outside the measured steps, then drop it.
await cache.get(tenantIds[0]);
cache.clear();
const result = [];
let filled = 0;
let previous = heap();
const start = previous;
for (const step of steps) {
  for (; filled < step; filled += 1) {
    const tenant = await cache.get(tenantIds[filled]);
    if (tenant === undefined) throw new Error(`tenant ${tenantIds[filled]} missing from the catalog`);
  }
  const now = heap();
  const added = step - (result.at(-1)?.cached ?? 0);
  result.push({ cached: filled, heapDeltaBytes: now - start, bytesPerTenant: (now - previous) / added });
  previous = now;
}
const size = cache.stats().size;
const sample = await cache.get(tenantIds[0]);
await cache.close();
await catalog.close();
console.log(
  JSON.stringify({ steps: result, size, recordJsonBytes: Buffer.byteLength(JSON.stringify(sample)) }),
);
