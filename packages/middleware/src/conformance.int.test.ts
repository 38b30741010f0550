import type { Tenant } from '@mt-paas/context';
import { createCatalog } from '@mt-paas/db';
import { createTestDatabase, describeWith, testRedis } from '@mt-paas/test-env';
import { Redis } from 'ioredis';
import { ADAPTERS } from './__fixtures__/apps.js';
import { describeConformance } from './__fixtures__/conformance.js';

/**
 * The conformance suite for Fastify, Express and Hono against real Postgres (the `@mt-paas/db`
 * catalog) and real Redis (rate limits and quotas through the Lua scripts).
 */
describeWith(['postgres', 'redis'], 'request pipeline on Postgres + Redis', () => {
  describeConformance(ADAPTERS, async () => {
    const database = await createTestDatabase({ label: 'conformance' });
    const catalog = await createCatalog({ connectionString: database.url });
    await catalog.migrate();
    const redis = new Redis(testRedis().url, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
    return {
      redis,
      keyPrefix: testRedis().prefix,
      usageSink: catalog.usage,
      auditSink: catalog.audit,
      async ledgerTotal(tenantId, meter) {
        const result = await catalog.driver.query<{ total: number | null }>(
          `SELECT sum(quantity) AS total FROM "${catalog.schema}".usage_ledger WHERE tenant_id = $1 AND meter = $2`,
          [tenantId, meter],
        );
        return Number(result.rows[0]?.total ?? 0);
      },
      async auditCount(tenantId, type) {
        const result = await catalog.driver.query<{ count: string }>(
          `SELECT count(*) AS count FROM "${catalog.schema}".audit_log WHERE tenant_id = $1 AND type = $2`,
          [tenantId, type],
        );
        return Number(result.rows[0]?.count ?? 0);
      },
      directory: {
        get: (tenantId) => catalog.directory.get(tenantId),
        resolveDomain: (domain) => catalog.directory.resolveDomain(domain),
        list: (options) => catalog.directory.list(options),
        async put(tenant: Tenant) {
          await catalog.tenants.upsert({
            id: tenant.id,
            name: tenant.name,
            status: 'active',
            plan: tenant.plan,
            placement: { mode: tenant.placement.mode },
            metadata: { ...tenant.metadata },
          });
          await catalog.tenants.setEntitlements(tenant.id, {
            ...tenant.entitlements,
            expiresAt: tenant.expiresAt ?? null,
            graceUntil: tenant.graceUntil ?? null,
          });
          if (tenant.status !== 'active') {
            await catalog.tenants.setStatus(tenant.id, tenant.status, {
              ...(tenant.block === undefined ? {} : { reason: tenant.block.reason, block: tenant.block }),
            });
          }
        },
        async addDomain(domain, tenantId) {
          await catalog.tenants.addDomains(tenantId, [domain]);
        },
      },
      async close() {
        await testRedis().flush();
        redis.disconnect();
        await catalog.close();
        await database.drop();
      },
    };
  });
});
