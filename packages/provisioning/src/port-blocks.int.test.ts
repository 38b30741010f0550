import { isMtPaasError } from '@mt-paas/context';
import { type Catalog, createCatalog } from '@mt-paas/db';
import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPortAllocator, type PortBlock } from './port-blocks.js';

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

  it('inside a caller transaction that rolls back: no block is left, and later allocations work', async () => {
    await catalog.tenants.upsert({ id: 'pb_tx', name: 'pb_tx', placement: { mode: 'docker' } });
    // A fresh allocator whose very first call is made inside the caller's transaction.
    const cleaner = createPortAllocator(other);
    for (const block of await cleaner.list()) await cleaner.release(block.tenantId); // blocks of the test above
    const fresh = createPortAllocator(catalog, { start: 40_000, size: 10, blocks: 5 });
    const rollback = new Error('caller rolls back');
    let seen: PortBlock | undefined;
    await expect(
      catalog.driver.transaction(async () => {
        seen = await fresh.allocate('pb_tx');
        // joined the caller's transaction: visible there, with the same block on a repeat call
        expect(await fresh.get('pb_tx')).toEqual(seen);
        expect(await fresh.allocate('pb_tx')).toEqual(seen);
        throw rollback;
      }),
    ).rejects.toBe(rollback);
    expect(seen).toMatchObject({ tenantId: 'pb_tx', index: 0, first: 40_000, last: 40_009 });
    expect(await fresh.get('pb_tx')).toBeUndefined();
    const { rows } = await catalog.driver.query(
      `SELECT 1 FROM mt_paas.port_blocks WHERE tenant_id = 'pb_tx'`,
    );
    expect(rows).toEqual([]);
    // later allocations (same allocator, another instance) work and get the block back
    const later = await fresh.allocate('pb_tx');
    expect(later).toEqual(seen);
    expect(await createPortAllocator(other, { start: 40_000, size: 10, blocks: 5 }).get('pb_tx')).toEqual(
      later,
    );
    // and one that commits with the caller's transaction stays
    await catalog.tenants.upsert({ id: 'pb_tx2', name: 'pb_tx2', placement: { mode: 'docker' } });
    const committed = await catalog.driver.transaction(() => fresh.allocate('pb_tx2'));
    expect(await fresh.get('pb_tx2')).toEqual(committed);
    expect(committed.index).toBe(1);
    // purging the tenant frees its block (ON DELETE CASCADE)
    await catalog.tenants.remove('pb_tx2');
    expect(await fresh.get('pb_tx2')).toBeUndefined();
  });

  it('on a catalog that was not migrated, every call is a CONFIG_INVALID that says to migrate', async () => {
    const bare = await createCatalog({ connectionString: database.url, schema: 'mt_paas_unmigrated' });
    try {
      const allocator = createPortAllocator(bare);
      const calls = [
        () => allocator.allocate('pb_0'),
        () => allocator.get('pb_0'),
        () => allocator.release('pb_0'),
        () => allocator.list(),
      ];
      for (const call of calls) {
        await expect(call()).rejects.toSatisfy(
          (error) =>
            isMtPaasError(error, 'CONFIG_INVALID') &&
            /mt_paas_unmigrated.*port_blocks.*migrate the catalog/.test((error as Error).message),
        );
      }
      // it creates nothing on its own
      const { rows } = await catalog.driver.query(
        `SELECT to_regclass('"mt_paas_unmigrated"."port_blocks"') AS t`,
      );
      expect(rows).toEqual([{ t: null }]);
    } finally {
      await bare.close();
    }
  });

  it('refuses a range that does not fit below port 65536', () => {
    expect(() => createPortAllocator(catalog, { start: 65_530, size: 10 })).toThrow(/do not fit|must be/);
    expect(() => createPortAllocator(catalog, { start: 10_200, size: 0 })).toThrow(/port_range_size/);
  });
});
