import { isMtPaasError, parseTenantId } from '@mt-paas/context';
import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CATALOG_MIGRATIONS_FOLDER, type Catalog, createCatalog, migrateCatalog } from './catalog.js';
import { applyMigrations, readMigrationsFolder } from './migrator.js';

describeWithPostgres('catalog on Postgres', () => {
  const database = useTestDatabase({ label: 'catalog' });
  let catalog: Catalog;

  beforeAll(async () => {
    catalog = await createCatalog({ connectionString: database.url, schema: 'mt_paas_test' });
    expect(await catalog.migrate()).toEqual([
      '0000_init',
      '0001_append_only_audit',
      '0002_webhook_receipt_ordering',
      '0003_port_blocks',
      '0004_provisioning_job_reports',
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
      'port_blocks',
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

  it('port_blocks: one block per tenant, one tenant per block, block >= 0, gone with its tenant', async () => {
    await catalog.tenants.upsert({ id: 'pb_a', name: 'A', placement: { mode: 'docker' } });
    await catalog.tenants.upsert({ id: 'pb_b', name: 'B', placement: { mode: 'docker' } });
    const insert = (block: number, tenantId: string) =>
      catalog.driver.query(
        'INSERT INTO mt_paas_test.port_blocks (block, tenant_id, first_port, last_port) VALUES ($1, $2, 0, 0)',
        [block, tenantId],
      );
    await insert(0, 'pb_a');
    await expect(insert(0, 'pb_b')).rejects.toThrow(/port_blocks_pkey/);
    await expect(insert(1, 'pb_a')).rejects.toThrow(/port_blocks_tenant_id_unique/);
    await expect(insert(-1, 'pb_b')).rejects.toThrow(/port_blocks_block_check/);
    await expect(insert(2, 'pb_nobody')).rejects.toThrow(/port_blocks_tenant_id_tenants_id_fk/);
    await catalog.tenants.remove('pb_a');
    const { rows } = await catalog.driver.query('SELECT block FROM mt_paas_test.port_blocks');
    expect(rows).toEqual([]);
  });

  it('0004: sweeps and status reports read provisioning jobs through partial indexes', async () => {
    const jobs = '"mt_paas_test"."provisioning_jobs"';
    await catalog.driver.exec(
      `INSERT INTO ${jobs} (tenant_id, action, state, status_report, updated_at)
       SELECT 't' || (n % 50), CASE WHEN n % 2 = 0 THEN 'suspend' ELSE 'onboard' END, 'succeeded', 'status:' || n,
              now() - make_interval(secs => n)
       FROM generate_series(1, 5000) AS n`,
    );
    await catalog.driver.exec(
      `INSERT INTO ${jobs} (tenant_id, action, state) VALUES ('t1', 'suspend', 'succeeded'), ('t2', 'marketplace.block', 'pending')`,
    );
    await catalog.driver.exec(`ANALYZE ${jobs}`);
    const plan = async (query: string) =>
      JSON.stringify((await catalog.driver.query(`EXPLAIN (FORMAT JSON) ${query}`)).rows);
    expect(
      await plan(
        `SELECT id FROM ${jobs} WHERE state = 'succeeded' AND action = ANY(ARRAY['suspend','resume']) AND status_report IS NULL ORDER BY updated_at LIMIT 100`,
      ),
    ).toContain('provisioning_jobs_unreported_idx');
    expect(
      await plan(
        `SELECT id FROM ${jobs} WHERE action LIKE 'marketplace.%' AND state IN ('pending', 'running')`,
      ),
    ).toContain('provisioning_jobs_open_idx');
    await catalog.driver.exec(`DELETE FROM ${jobs}`);
  });

  it('0003 adopts a port_blocks table created by an older @mt-paas/provisioning at runtime', async () => {
    const legacy = await createCatalog({ connectionString: database.url, schema: 'mt_paas_legacy' });
    try {
      // the catalog as it was before 0003, plus the table the port allocator used to create itself
      await legacy.driver.transaction((session) =>
        applyMigrations(session, {
          migrations: readMigrationsFolder(CATALOG_MIGRATIONS_FOLDER).slice(0, 3),
          ledgerSchema: 'mt_paas_legacy',
          lockKey: 'catalog:mt_paas_legacy',
          rewrite: (statement) => statement.replaceAll('"mt_paas"', '"mt_paas_legacy"'),
        }),
      );
      await legacy.driver.exec(
        `CREATE TABLE IF NOT EXISTS "mt_paas_legacy"."port_blocks" (
           block integer PRIMARY KEY CHECK (block >= 0),
           tenant_id text NOT NULL UNIQUE REFERENCES "mt_paas_legacy"."tenants"(id) ON DELETE CASCADE,
           first_port integer NOT NULL,
           last_port integer NOT NULL,
           allocated_at timestamptz NOT NULL DEFAULT now())`,
      );
      await legacy.tenants.upsert({ id: 'old_a', name: 'Old', placement: { mode: 'docker' } });
      await legacy.driver.exec(
        `INSERT INTO "mt_paas_legacy"."port_blocks" (block, tenant_id, first_port, last_port) VALUES (3, 'old_a', 10500, 10599)`,
      );

      expect(await legacy.migrate()).toEqual(['0003_port_blocks', '0004_provisioning_job_reports']);
      const kept = await legacy.driver.query(
        'SELECT block, tenant_id, first_port, last_port FROM "mt_paas_legacy"."port_blocks"',
      );
      expect(kept.rows).toEqual([{ block: 3, tenant_id: 'old_a', first_port: 10500, last_port: 10599 }]);
      const constraints = await legacy.driver.query<{ conname: string }>(
        `SELECT conname FROM pg_constraint WHERE conrelid = '"mt_paas_legacy"."port_blocks"'::regclass ORDER BY 1`,
      );
      expect(constraints.rows.map((row) => row.conname)).toEqual([
        'port_blocks_block_check',
        'port_blocks_pkey',
        'port_blocks_tenant_id_tenants_id_fk',
        'port_blocks_tenant_id_unique',
      ]);
      // the fresh catalog ends up with exactly the same constraints
      const fresh = await catalog.driver.query<{ conname: string }>(
        `SELECT conname FROM pg_constraint WHERE conrelid = '"mt_paas_test"."port_blocks"'::regclass ORDER BY 1`,
      );
      expect(fresh.rows).toEqual(constraints.rows);
      await legacy.tenants.remove('old_a');
      expect((await legacy.driver.query('SELECT 1 FROM "mt_paas_legacy"."port_blocks"')).rows).toEqual([]);
    } finally {
      await legacy.close();
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
