import { describeWithPostgres, testBackend, useTestDatabase, withDatabase } from '@mt-paas/test-env';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type ModeEnvironment, openModeEnvironment } from './__fixtures__/environment.js';

describeWithPostgres('database mode pools', () => {
  const database = useTestDatabase({ label: 'pools' });
  const cap = 12;
  const prefix = `mtp_t_${testBackend().runId}_pool_`;
  let environment: ModeEnvironment;
  let admin: pg.Client;

  beforeAll(async () => {
    environment = await openModeEnvironment('database', database.url, 'pool', {
      database: { databasePrefix: prefix, maxConnections: cap, connectionsPerTenant: 2, idleTimeoutMs: 300 },
    });
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    // 4 real databases; 500 tenants placed on them by name (each tenant still gets its own pool).
    for (let index = 0; index < 4; index += 1) {
      const id = `shard_${index}`;
      await environment.catalog.tenants.upsert({
        id,
        name: id,
        status: 'active',
        placement: { mode: 'database' },
      });
      await environment.tenantDb.createTenantStorage(id);
    }
    const values = Array.from(
      { length: 500 },
      (_, index) =>
        `('burst_${index}', 'Burst ${index}', 'active', 'database', '${prefix}shard_${index % 4}')`,
    );
    await admin.query(
      `INSERT INTO mt_paas.tenants (id, name, status, placement_mode, placement_location) VALUES ${values.join(', ')}`,
    );
  });
  afterAll(async () => {
    await admin?.end();
    await environment?.close();
  });

  it('serves a burst of 500 tenants without passing the connection cap', async () => {
    const { tenantDb } = environment;
    const role = environment.appRole;
    let sampling = true;
    let maxSeen = 0;
    const sampler = (async () => {
      while (sampling) {
        const { rows } = await admin.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1',
          [role],
        );
        maxSeen = Math.max(maxSeen, rows[0]!.n);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    const results = await Promise.all(
      Array.from({ length: 500 }, (_, index) =>
        tenantDb.forTenant(`burst_${index}`).run(async (tx) => {
          const result = await tx.execute(
            sql`select current_setting('app.tenant_id', true) as tenant, current_database() as db from pg_sleep(0.002)`,
          );
          return (result as unknown as { rows: Array<{ tenant: string; db: string }> }).rows[0]!;
        }),
      ),
    );
    sampling = false;
    await sampler;
    results.forEach((row, index) => {
      expect(row).toEqual({ tenant: `burst_${index}`, db: `${prefix}shard_${index % 4}` });
    });
    expect(maxSeen).toBeGreaterThan(0);
    expect(maxSeen).toBeLessThanOrEqual(cap);
    expect(tenantDb.pools!.peakConnections).toBeLessThanOrEqual(cap);
    expect(tenantDb.pools!.peakConnections).toBeGreaterThan(1);
  });

  it('closes idle pools cleanly', async () => {
    const { tenantDb } = environment;
    await tenantDb.forTenant('burst_1').run((tx) => tx.execute(sql`select 1`));
    expect(tenantDb.pools!.openConnections).toBeGreaterThan(0);
    const deadline = Date.now() + 10_000;
    while (tenantDb.pools!.openConnections > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(tenantDb.pools!.openConnections).toBe(0);
    const { rows } = await admin.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1',
      [environment.appRole],
    );
    expect(rows[0]!.n).toBe(0);
  });

  it('pipelines its tenant pools (the pipeline option) and follows a placement URL', async () => {
    const { tenantDb } = environment;
    const client = await tenantDb.pools!.connect('shard_0', await tenantDb.databaseUrlOf('shard_0' as never));
    try {
      expect((client as unknown as { pipeline?: boolean }).pipeline).toBe(true);
    } finally {
      client.release();
    }
    await environment.catalog.tenants.upsert({
      id: 'url_1',
      name: 'Placed by URL',
      status: 'active',
      // a placement URL names the owner; units connect to that database as the placement app role
      placement: { mode: 'database', location: withDatabase(database.url, `${prefix}shard_2`) },
    });
    const row = await tenantDb.forTenant('url_1').run(async (tx) => {
      const result = await tx.execute(
        sql`select current_setting('app.tenant_id', true) as tenant, current_database() as db,
                   current_user::text as user`,
      );
      return (result as unknown as { rows: Array<{ tenant: string; db: string; user: string }> }).rows[0]!;
    });
    expect(row).toEqual({ tenant: 'url_1', db: `${prefix}shard_2`, user: environment.appRole });
  });

  it('reports a missing tenant database as TENANT_STORAGE_UNAVAILABLE', async () => {
    await environment.catalog.tenants.upsert({
      id: 'nodb_1',
      name: 'No db',
      status: 'active',
      placement: { mode: 'database' },
    });
    await expect(
      environment.tenantDb.forTenant('nodb_1').run((tx) => tx.execute(sql`select 1`)),
    ).rejects.toMatchObject({ code: 'TENANT_STORAGE_UNAVAILABLE' });
  });
});
