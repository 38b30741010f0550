// Shared by the experiment scripts: 100 active tenants in memory, a pipeline over them, and per-thread CPU.
import { createTenantPipeline } from '@mt-paas/middleware';
import pino from 'pino';

/** 100 active tenants `t0000`…`t0099`, plan `pro`, no rpm limit. */
export function memoryTenants() {
  const tenants = new Map();
  for (let index = 0; index < 100; index++) {
    const id = `t${String(index).padStart(4, '0')}`;
    tenants.set(id, {
      id,
      name: id,
      status: 'active',
      plan: 'pro',
      entitlements: { features: ['a'], limits: { rpm: 1_000_000_000 }, quotas: {} },
      placement: { mode: 'row' },
      metadata: {},
      createdAt: new Date(),
      updatedAt: new Date(),
    });
  }
  return tenants;
}

/** A `TenantDirectory` over {@link memoryTenants}. */
export function memoryDirectory(tenants = memoryTenants()) {
  return {
    async get(id) {
      return tenants.get(id);
    },
    async resolveDomain() {
      return undefined;
    },
    async list() {
      return { tenants: [...tenants.values()] };
    },
  };
}

/** A header-strategy pipeline over the memory directory; request log off, metrics on, limits off unless given. */
export function memoryPipeline(options = {}) {
  return createTenantPipeline({
    directory: memoryDirectory(),
    strategies: [{ type: 'header' }],
    logRequests: false,
    logger: pino({ level: 'error' }),
    rateLimit: { enabled: false },
    quota: { enabled: false },
    ...options,
  });
}

export { threadCpu } from '../lib/thread-cpu.mjs';
