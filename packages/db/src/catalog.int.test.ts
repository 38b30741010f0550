import { isMtPaasError, parseTenantId } from '@mt-paas/context';
import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Catalog, createCatalog, migrateCatalog } from './catalog.js';

describeWithPostgres('catalog on Postgres', () => {
  const database = useTestDatabase({ label: 'catalog' });
  let catalog: Catalog;

  beforeAll(async () => {
    catalog = await createCatalog({ connectionString: database.url, schema: 'mt_paas_test' });
    expect(await catalog.migrate()).toEqual([
      '0000_init',
      '0001_append_only_audit',
      '0002_webhook_receipt_ordering',
    ]);
  });
  afterAll(async () => {
    await catalog?.close();
  });

  it('migrates idempotently into the configured schema', async () => {
    expect(await migrateCatalog(catalog)).toEqual([]);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const { rows } = await client.query(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'mt_paas_test' ORDER BY 1",
    );
    await client.end();
    expect(rows.map((row) => row.table_name)).toEqual([
      '__mt_paas_migrations',
      'audit_log',
      'entitlements',
      'outbox',
      'provisioning_jobs',
      'tenant_domains',
      'tenant_migrations',
      'tenants',
      'usage_ledger',
      'webhook_receipts',
    ]);
  });

  it('upserts tenants and reads them back through the directory', async () => {
    const created = await catalog.tenants.upsert({
      id: 'univ_8',
      name: 'Gwangju University',
      status: 'active',
      plan: 'starter',
      adminEmail: 'admin@univ8.example',
      applicationId: 42,
      applicationKind: 'service',
      placement: { mode: 'schema', location: 'univ_8' },
    });
    expect(created).toMatchObject({
      id: 'univ_8',
      status: 'active',
      plan: 'starter',
      placement: { mode: 'schema', location: 'univ_8' },
      metadata: { adminEmail: 'admin@univ8.example', applicationId: '42', applicationKind: 'service' },
      entitlements: { plan: 'starter', features: {}, limits: { rpm: null, quotas: {} } },
    });
    const renamed = await catalog.tenants.upsert({ id: 'univ_8', name: 'Gwangju Univ.' });
    expect(renamed.name).toBe('Gwangju Univ.');
    expect(renamed.status).toBe('active');
    expect(await catalog.directory.get(parseTenantId('nobody_here'))).toBeUndefined();
  });

  it('sets entitlements, status and domains', async () => {
    await catalog.tenants.upsert({ id: 'demo_7', name: 'Demo 7', status: 'active' });
    const expiresAt = new Date('2030-01-01T00:00:00Z');
    const withPlan = await catalog.tenants.setEntitlements('demo_7', {
      plan: 'professional',
      features: { quiz: true },
      limits: { rpm: 600, quotas: { llm_tokens: { limit: 1000, period: 'monthly', enforcement: 'block' } } },
      expiresAt,
      source: 'marketplace',
    });
    expect(withPlan.plan).toBe('professional');
    expect(withPlan.entitlements.features).toEqual({ quiz: true });
    expect(withPlan.entitlements.limits.rpm).toBe(600);
    expect(withPlan.expiresAt?.toISOString()).toBe(expiresAt.toISOString());

    const blocked = await catalog.tenants.setStatus('demo_7', 'blocked', {
      reason: 'unpaid',
      block: { message: 'Contact billing' },
    });
    expect(blocked.status).toBe('blocked');
    expect(blocked.block).toEqual({ reason: 'unpaid', message: 'Contact billing' });
    const active = await catalog.tenants.setStatus('demo_7', 'active');
    expect(active.block).toBeUndefined();

    await catalog.tenants.addDomains('demo_7', [
      'Demo7.Example.com',
      { domain: 'demo7.tutor.example', kind: 'subdomain' },
    ]);
    expect(await catalog.directory.resolveDomain('demo7.example.com:443')).toBe('demo_7');
    expect((await catalog.directory.get(parseTenantId('demo_7')))?.domains).toEqual([
      'demo7.example.com',
      'demo7.tutor.example',
    ]);
    await expect(catalog.tenants.addDomains('univ_8', ['demo7.example.com'])).rejects.toSatisfy((error) =>
      isMtPaasError(error, 'CONFLICT'),
    );
    await catalog.tenants.removeDomains('demo_7', ['demo7.example.com']);
    expect(await catalog.directory.resolveDomain('demo7.example.com')).toBeUndefined();
    await expect(catalog.tenants.setStatus('missing_1', 'active')).rejects.toSatisfy((error) =>
      isMtPaasError(error, 'TENANT_NOT_FOUND'),
    );
  });

  it('lists tenants in pages filtered by status', async () => {
    for (let index = 0; index < 5; index += 1) {
      await catalog.tenants.upsert({ id: `page_${index}`, name: `Page ${index}`, status: 'suspended' });
    }
    const first = await catalog.directory.list({ status: ['suspended'], limit: 3 });
    expect(first.tenants.map((tenant) => tenant.id)).toEqual(['page_0', 'page_1', 'page_2']);
    expect(first.nextCursor).toBeDefined();
    const second = await catalog.directory.list({
      status: ['suspended'],
      limit: 3,
      cursor: first.nextCursor!,
    });
    expect(second.tenants.map((tenant) => tenant.id)).toEqual(['page_3', 'page_4']);
    expect(second.nextCursor).toBeUndefined();
  });

  it('records usage once per idempotency key and appends audit events only', async () => {
    const tenantId = parseTenantId('univ_8');
    const record = { tenantId, meter: 'api_requests', quantity: 3, at: new Date(), idempotencyKey: 'k1' };
    await catalog.usage.record([record, { ...record, idempotencyKey: 'k2', quantity: 4 }]);
    await catalog.usage.record([record]);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query(
        "SELECT sum(quantity)::int AS total, count(*)::int AS n FROM mt_paas_test.usage_ledger WHERE tenant_id = 'univ_8'",
      );
      expect(rows[0]).toEqual({ total: 7, n: 2 });

      await catalog.audit.record({
        type: 'cross_tenant_access_attempt',
        severity: 'high',
        tenantId,
        targetTenantId: 'demo_7',
        actor: { userId: 'u1', ip: '10.0.0.1' },
        at: new Date(),
      });
      const audit = await client.query('SELECT type, severity, target_tenant_id FROM mt_paas_test.audit_log');
      expect(audit.rows).toEqual([
        { type: 'cross_tenant_access_attempt', severity: 'high', target_tenant_id: 'demo_7' },
      ]);
      await expect(client.query('DELETE FROM mt_paas_test.audit_log')).rejects.toThrow(/append-only/);
      await expect(client.query("UPDATE mt_paas_test.audit_log SET type = 'x'")).rejects.toThrow(
        /append-only/,
      );
    } finally {
      await client.end();
    }
  });

  it('reports an unreachable server as TENANT_STORAGE_UNAVAILABLE', async () => {
    const unreachable = await createCatalog({ connectionString: 'postgres://postgres@127.0.0.1:1/none' });
    await expect(unreachable.directory.get(parseTenantId('univ_8'))).rejects.toSatisfy((error) =>
      isMtPaasError(error, 'TENANT_STORAGE_UNAVAILABLE'),
    );
    await unreachable.close();
  });
});
