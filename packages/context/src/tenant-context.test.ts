import { EventEmitter, once } from 'node:events';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { MtPaasError } from './errors.js';
import {
  createTenantContext,
  currentTenant,
  requireTenant,
  runWithTenant,
  tryCurrentTenant,
} from './tenant-context.js';
import type { Tenant } from './types.js';

const TENANTS = Array.from({ length: 120 }, (_, index) => `tenant_${index}`);

/** Random small delay so that the tenants' steps interleave. */
const jitter = () => sleep(Math.floor(Math.random() * 5));

describe('tenant context', () => {
  it('is absent outside runWithTenant', () => {
    expect(tryCurrentTenant()).toBeUndefined();
    expect(() => requireTenant()).toThrowError(
      expect.objectContaining({ code: 'TENANT_CONTEXT_MISSING', httpStatus: 500 }),
    );
    expect(() => currentTenant()).toThrow(MtPaasError);
  });

  it('validates the tenant id before running anything', () => {
    let ran = false;
    expect(() =>
      runWithTenant({ tenantId: "x'; drop table t; --" }, () => {
        ran = true;
      }),
    ).toThrowError(expect.objectContaining({ code: 'INVALID_TENANT_ID' }));
    expect(ran).toBe(false);
  });

  it('validates a frozen look-alike context instead of trusting it', () => {
    const lookAlike = Object.freeze({
      tenantId: 'x"; drop schema',
      requestId: 'r',
      tenant: undefined,
      user: undefined,
    });
    let ran = false;
    expect(() =>
      runWithTenant(lookAlike as never, () => {
        ran = true;
      }),
    ).toThrowError(expect.objectContaining({ code: 'INVALID_TENANT_ID' }));
    expect(ran).toBe(false);
    // a context made by createTenantContext (or read back with tryCurrentTenant) runs as it is
    const made = createTenantContext({ tenantId: 'univ_8', requestId: 'r-1' });
    expect(runWithTenant(made, () => tryCurrentTenant())).toBe(made);
    expect(runWithTenant(made, () => runWithTenant(tryCurrentTenant()!, () => tryCurrentTenant()))).toBe(
      made,
    );
  });

  it('is frozen, including the user', () => {
    const context = createTenantContext({ tenantId: 'univ_8', user: { id: 'u1', roles: ['admin'] } });
    expect(Object.isFrozen(context)).toBe(true);
    expect(Object.isFrozen(context.user)).toBe(true);
    expect(Object.isFrozen(context.user?.roles)).toBe(true);
    expect(() => {
      (context as { tenantId: string }).tenantId = 'other';
    }).toThrow(TypeError);
    expect(context.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('holds a frozen copy of the tenant record, so a handler cannot change what a cache shares', () => {
    const cached = {
      id: 'univ_8',
      name: 'Univ 8',
      status: 'active',
      plan: 'free',
      entitlements: { plan: 'free', features: { quiz: false }, limits: { rpm: 60, quotas: {} } },
      placement: { mode: 'row' },
      domains: ['univ8.example.com'],
      metadata: { contact: { email: 'admin@univ8.example.com' } },
      createdAt: new Date(0),
      updatedAt: new Date(0),
    } as unknown as Tenant;
    const context = createTenantContext({ tenant: cached });
    expect(context.tenant).toEqual(cached);
    const tenant = context.tenant!;
    expect(() => {
      (tenant as { status: string }).status = 'suspended';
    }).toThrow(TypeError);
    expect(() => {
      (tenant.entitlements.features as Record<string, boolean>).quiz = true;
    }).toThrow(TypeError);
    expect(() => (tenant.domains as string[]).push('evil.example.com')).toThrow(TypeError);
    expect(() => {
      (tenant.metadata.contact as { email: string }).email = 'x@evil.example.com';
    }).toThrow(TypeError);
    expect(tenant.createdAt).toBeInstanceOf(Date);
    // the caller's object is neither frozen nor changed
    expect(Object.isFrozen(cached)).toBe(false);
    expect(cached.status).toBe('active');
  });

  it('shares the frozen record of an earlier context instead of copying it again, and still copies look-alikes', () => {
    const record = {
      id: 'univ_8',
      status: 'active',
      plan: 'free',
      metadata: { a: { b: 1 } },
    } as unknown as Tenant;
    const first = createTenantContext({ tenant: record });
    const second = createTenantContext({ tenant: first.tenant!, requestId: 'r-2' });
    expect(second.tenant).toBe(first.tenant);
    expect(Object.isFrozen(second.tenant!.metadata.a)).toBe(true);
    // a frozen object this package did not copy is copied: frozen at the top is not frozen all the way down
    const shallow = Object.freeze({ ...record, metadata: { a: { b: 1 } } }) as Tenant;
    const third = createTenantContext({ tenant: shallow });
    expect(third.tenant).not.toBe(shallow);
    expect(() => {
      (third.tenant!.metadata.a as { b: number }).b = 2;
    }).toThrow(TypeError);
  });

  it('refuses a tenant record that does not match the id', () => {
    expect(() =>
      createTenantContext({
        tenantId: 'univ_8',
        tenant: { id: 'demo_7' } as never,
      }),
    ).toThrowError(expect.objectContaining({ code: 'CROSS_TENANT_ACCESS' }));
  });

  it('nested runs see the inner tenant and restore the outer one', async () => {
    await runWithTenant({ tenantId: 'outer_t', requestId: 'r-outer' }, async () => {
      expect(currentTenant()).toBe('outer_t');
      await runWithTenant({ tenantId: 'inner_t' }, async () => {
        await jitter();
        expect(currentTenant()).toBe('inner_t');
      });
      expect(currentTenant()).toBe('outer_t');
      expect(requireTenant().requestId).toBe('r-outer');
      expect(() =>
        runWithTenant({ tenantId: 'inner_t' }, () => {
          throw new Error('inner failure');
        }),
      ).toThrow('inner failure');
      expect(currentTenant()).toBe('outer_t');
    });
    expect(tryCurrentTenant()).toBeUndefined();
  });

  it('keeps 120 tenants apart across awaits, timers, streams and EventEmitter callbacks', async () => {
    const shared = new EventEmitter();
    shared.setMaxListeners(0);
    const seen = new Map<string, string[]>();
    const note = (tenantId: string) => {
      const list = seen.get(tenantId) ?? [];
      list.push(currentTenant());
      seen.set(tenantId, list);
    };

    await Promise.all(
      TENANTS.map((tenantId) =>
        runWithTenant({ tenantId, requestId: `req-${tenantId}` }, async () => {
          // awaits
          await jitter();
          note(tenantId);

          // timers: setTimeout, setImmediate, queueMicrotask
          await new Promise<void>((resolve) =>
            setTimeout(() => {
              note(tenantId);
              resolve();
            }, Math.random() * 5),
          );
          await new Promise<void>((resolve) =>
            setImmediate(() => {
              note(tenantId);
              resolve();
            }),
          );
          await new Promise<void>((resolve) =>
            queueMicrotask(() => {
              note(tenantId);
              resolve();
            }),
          );

          // streams: a transform sees the tenant of the pipeline that runs it
          const chunks: string[] = [];
          await pipeline(
            Readable.from(['a', 'b', 'c']),
            new Transform({
              objectMode: true,
              transform(chunk, _encoding, callback) {
                setTimeout(() => callback(null, `${currentTenant()}:${chunk}`), Math.random() * 3);
              },
            }),
            async (source: AsyncIterable<string>) => {
              for await (const chunk of source) {
                await jitter();
                note(tenantId);
                chunks.push(chunk);
              }
            },
          );
          expect(chunks).toEqual([`${tenantId}:a`, `${tenantId}:b`, `${tenantId}:c`]);

          // EventEmitter: a per-unit emitter fired later from a timer
          const emitter = new EventEmitter();
          emitter.on('ping', () => note(tenantId));
          setTimeout(() => emitter.emit('ping'), Math.random() * 5);
          await once(emitter, 'ping');

          // a shared emitter: every tenant emits its own event; the listener runs in the emitter's caller context
          const heard = new Promise<string>((resolve) => {
            const listener = (target: string) => {
              if (target === tenantId) {
                shared.off('tenant', listener);
                resolve(currentTenant());
              }
            };
            shared.on('tenant', listener);
          });
          await jitter();
          shared.emit('tenant', tenantId);
          expect(await heard).toBe(tenantId);

          await jitter();
          expect(requireTenant().requestId).toBe(`req-${tenantId}`);
          note(tenantId);
        }),
      ),
    );

    expect(seen.size).toBe(TENANTS.length);
    for (const [tenantId, observed] of seen) {
      expect(observed.length).toBe(9);
      expect(new Set(observed)).toEqual(new Set([tenantId]));
    }
    expect(tryCurrentTenant()).toBeUndefined();
  });
});
