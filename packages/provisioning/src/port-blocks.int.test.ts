import { isMtPaasError } from '@mt-paas/context';
import { type Catalog, createCatalog } from '@mt-paas/db';
import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPortAllocator } from './port-blocks.js';

describeWithPostgres('port blocks in the catalog', () => {
  const database = useTestDatabase({ label: 'ports' });
  let catalog: Catalog;
  let other: Catalog;
  const ids = Array.from({ length: 24 }, (_, index) => `pb_${index}`);

  beforeAll(async () => {
    catalog = await createCatalog({ connectionString: database.url });
    await catalog.migrate();
    other = await createCatalog({ connectionString: database.url }); // a second instance
    for (const id of ids) await catalog.tenants.upsert({ id, name: id, placement: { mode: 'docker' } });
  });
  afterAll(async () => {
    await other?.close();
    await catalog?.close();
  });

  it('never gives one block twice, even to concurrent callers on two instances; exhaustion is a clear 503', async () => {
    const first = createPortAllocator(catalog, { start: 20_000, size: 10, blocks: 20 });
    const second = createPortAllocator(other, { start: 20_000, size: 10, blocks: 20 });
    const results = await Promise.allSettled(
      ids.map((id, index) => (index % 2 === 0 ? first : second).allocate(id)),
    );
    const granted = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const refused = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
    expect(granted).toHaveLength(20);
    expect(new Set(granted.map((block) => block.index)).size).toBe(20);
    expect(new Set(granted.map((block) => block.first)).size).toBe(20);
    for (const block of granted) {
      expect(block.last - block.first).toBe(9);
      expect(block.first).toBeGreaterThanOrEqual(20_000);
      expect(block.last).toBeLessThanOrEqual(20_199);
    }
    expect(refused).toHaveLength(4);
    for (const error of refused) {
      expect(isMtPaasError(error, 'SERVICE_UNAVAILABLE')).toBe(true);
      expect((error as Error).message).toMatch(/No free port block/);
    }
    // asking again returns the same block
    const holder = granted[5]!;
    expect(await first.allocate(holder.tenantId)).toEqual(holder);
    // freeing one lets a waiting tenant have exactly that block
    await first.release(holder.tenantId);
    const waiting = ids.find((id) => !granted.some((block) => block.tenantId === id))!;
    expect((await second.allocate(waiting)).index).toBe(holder.index);
    expect((await first.list()).length).toBe(20);
  });

  it('refuses a range that does not fit below port 65536', () => {
    expect(() => createPortAllocator(catalog, { start: 65_530, size: 10 })).toThrow(/do not fit|must be/);
    expect(() => createPortAllocator(catalog, { start: 10_200, size: 0 })).toThrow(/port_range_size/);
  });
});
