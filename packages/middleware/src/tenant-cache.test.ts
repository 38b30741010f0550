import { parseTenantId, type TenantId } from '@mt-paas/context';
import { describe, expect, it, vi } from 'vitest';
import { countingDirectory, makeTenant, memoryDirectory } from './__fixtures__/tenants.js';
import { createInProcessEventBus } from './event-bus.js';
import { createCachedDirectory } from './tenant-cache.js';

describe('createCachedDirectory', () => {
  it('keeps a flood of unknown ids away from the directory (negative cache, shared in-flight lookups)', async () => {
    const directory = countingDirectory(memoryDirectory([makeTenant('univ_8')]));
    const cache = createCachedDirectory({ directory, negativeTtlMs: 60_000 });
    const ids = Array.from({ length: 50 }, (_, index) => parseTenantId(`random_${index}`));
    const results = await Promise.all(
      Array.from({ length: 2_000 }, (_, index) => cache.get(ids[index % 50]!)),
    );
    expect(results.every((result) => result === undefined)).toBe(true);
    expect(directory.calls.get.length).toBe(50);
    await Promise.all(ids.map((id) => cache.get(id)));
    expect(directory.calls.get.length).toBe(50);
  });

  it('caches found tenants and refetches after an invalidation event', async () => {
    const inner = memoryDirectory([makeTenant('univ_8')]);
    const directory = countingDirectory(inner);
    const events = createInProcessEventBus();
    const cache = createCachedDirectory({ directory, events });
    await cache.start();
    const id = 'univ_8' as TenantId;
    expect((await cache.get(id))?.status).toBe('active');
    expect((await cache.get(id))?.status).toBe('active');
    expect(directory.calls.get.length).toBe(1);
    inner.put(makeTenant('univ_8', { status: 'suspended' }));
    expect((await cache.get(id))?.status).toBe('active');
    await events.publish({
      type: 'tenant.changed',
      tenantId: id,
      status: 'suspended',
      at: new Date().toISOString(),
    });
    expect((await cache.get(id))?.status).toBe('suspended');
    expect(directory.calls.get.length).toBe(2);
    await cache.close();
  });

  it('after an invalidation during a load, later lookups share the newer load (one query, fresh answer)', async () => {
    const releases: Array<() => void> = [];
    const statuses = ['active', 'suspended'] as const;
    let calls = 0;
    const directory = {
      ...memoryDirectory(),
      async get(tenantId: string) {
        const status = statuses[calls++];
        if (status === undefined) throw new Error('a third directory lookup');
        await new Promise<void>((resolve) => releases.push(resolve));
        return makeTenant(tenantId, { status });
      },
    };
    const cache = createCachedDirectory({ directory });
    const id = 'univ_8' as TenantId;
    const stale = cache.get(id);
    await vi.waitFor(() => expect(releases.length).toBe(1));
    cache.invalidate(id);
    const fresh = cache.get(id);
    await vi.waitFor(() => expect(releases.length).toBe(2));
    releases[0]!();
    expect((await stale)?.status).toBe('active');
    const joined = cache.get(id); // must join the load started after the invalidation
    releases[1]!();
    expect((await fresh)?.status).toBe('suspended');
    expect((await joined)?.status).toBe('suspended');
    expect(calls).toBe(2);
    expect((await cache.get(id))?.status).toBe('suspended');
    expect(calls).toBe(2);
  });

  it('refuses to look up an invalid id', async () => {
    const directory = countingDirectory(memoryDirectory());
    const cache = createCachedDirectory({ directory });
    await expect(cache.get('Robert; DROP' as TenantId)).rejects.toMatchObject({ code: 'INVALID_TENANT_ID' });
    expect(directory.calls.get).toEqual([]);
  });

  it('expires negative entries after their short TTL', async () => {
    const inner = memoryDirectory();
    const directory = countingDirectory(inner);
    const cache = createCachedDirectory({ directory, negativeTtlMs: 1 });
    const id = 'late_tenant' as TenantId;
    expect(await cache.get(id)).toBeUndefined();
    inner.put(makeTenant('late_tenant'));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect((await cache.get(id))?.id).toBe('late_tenant');
  });

  it('expires found tenants after their TTL (a missed invalidation heals)', async () => {
    const inner = memoryDirectory([makeTenant('univ_8')]);
    const directory = countingDirectory(inner);
    const cache = createCachedDirectory({ directory, ttlMs: 1 });
    const id = 'univ_8' as TenantId;
    expect((await cache.get(id))?.status).toBe('active');
    inner.put(makeTenant('univ_8', { status: 'suspended' }));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect((await cache.get(id))?.status).toBe('suspended');
    expect(directory.calls.get).toEqual(['univ_8', 'univ_8']);
  });

  it('caches domain lookups, found and not found', async () => {
    const inner = memoryDirectory([makeTenant('univ_8')]);
    inner.addDomain('learn.univ8.ac.kr', 'univ_8');
    const directory = countingDirectory(inner);
    const cache = createCachedDirectory({ directory });
    expect(await cache.resolveDomain('learn.univ8.ac.kr')).toBe('univ_8');
    expect(await cache.resolveDomain('learn.univ8.ac.kr')).toBe('univ_8');
    expect(await cache.resolveDomain('nobody.example')).toBeUndefined();
    expect(await cache.resolveDomain('nobody.example')).toBeUndefined();
    expect(directory.calls.resolveDomain).toEqual(['learn.univ8.ac.kr', 'nobody.example']);
    cache.invalidate('univ_8' as TenantId);
    await cache.resolveDomain('learn.univ8.ac.kr');
    expect(directory.calls.resolveDomain.length).toBe(3);
  });
});
