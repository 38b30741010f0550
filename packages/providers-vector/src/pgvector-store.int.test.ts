import { isMtPaasError } from '@mt-paas/context';
import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPgVectorStore } from './pgvector-store.js';

describeWithPostgres('pgvector store on a Postgres server', () => {
  const database = useTestDatabase({ label: 'vector' });
  let pool: pg.Pool;
  let hasPgvector = false;

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: database.url, max: 4 });
    const available = await pool.query(`select 1 from pg_available_extensions where name = 'vector'`);
    hasPgvector = available.rows.length > 0;
  });
  afterAll(async () => {
    await pool?.end();
  });

  it('refuses with CONFIG_INVALID and install instructions when the server has no pgvector', async (context) => {
    if (hasPgvector) context.skip('this server has pgvector; the missing-extension path cannot be exercised');
    const store = createPgVectorStore({ executor: pool, dimensions: 8 });
    const error = await store
      .forTenant('acme_univ')
      .upsert([{ id: 'a', vector: [1, 0, 0, 0, 0, 0, 0, 0] }])
      .catch((caught: unknown) => caught);
    expect(isMtPaasError(error, 'CONFIG_INVALID')).toBe(true);
    const message = (error as Error).message;
    expect(message).toMatch(/pgvector extension is not available on this Postgres server \(version \d+/);
    expect(message).toMatch(/apt install postgresql-<major>-pgvector/);
    expect(message).toMatch(/CREATE EXTENSION vector/);
    expect((error as { details?: Record<string, unknown> }).details).toMatchObject({ extension: 'vector' });
    // Nothing was half-created.
    const tables = await pool.query(`select 1 from pg_tables where tablename like 'mt_paas_vectors_%'`);
    expect(tables.rows).toEqual([]);
  });

  it('fails the same way through connectionString, and again on retry (not cached as success)', async (context) => {
    if (hasPgvector) context.skip('this server has pgvector; the missing-extension path cannot be exercised');
    const store = createPgVectorStore({ connectionString: database.url, dimensions: 8 });
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        const error = await store
          .forTenant('acme_univ')
          .count()
          .catch((caught: unknown) => caught);
        expect(isMtPaasError(error, 'CONFIG_INVALID')).toBe(true);
      }
    } finally {
      await store.close();
    }
  });

  it('refuses the same way inside a tenant-scoped transaction (runScoped) and rolls it back', async (context) => {
    if (hasPgvector) context.skip('this server has pgvector; the missing-extension path cannot be exercised');
    const outcomes: string[] = [];
    const store = createPgVectorStore({
      dimensions: 8,
      // What @mt-paas/db's unit of work does: a transaction with the tenant set locally.
      runScoped: async (tenantId, work) => {
        const client = await pool.connect();
        try {
          await client.query('begin');
          await client.query(`select set_config('app.tenant_id', $1, true)`, [tenantId]);
          const result = await work(client);
          await client.query('commit');
          outcomes.push('commit');
          return result;
        } catch (error) {
          await client.query('rollback');
          outcomes.push('rollback');
          throw error;
        } finally {
          client.release();
        }
      },
    });
    const error = await store
      .forTenant('acme_univ')
      .query({ vector: [1, 0, 0, 0, 0, 0, 0, 0] })
      .catch((caught: unknown) => caught);
    expect(isMtPaasError(error, 'CONFIG_INVALID')).toBe(true);
    expect(outcomes).toEqual(['rollback']);
  });

  it('opens its own pool from a connectionString and reports the missing extension', async (context) => {
    if (hasPgvector) context.skip('this server has pgvector; the missing-extension path cannot be exercised');
    const store = createPgVectorStore({ connectionString: database.url, dimensions: 8 });
    try {
      const error = await store
        .forTenant('acme_univ')
        .count()
        .catch((caught: unknown) => caught);
      expect(isMtPaasError(error, 'CONFIG_INVALID')).toBe(true);
      expect((error as Error).message).toMatch(/pgvector/);
    } finally {
      await store.close();
    }
  });

  it('works end to end when the server has pgvector', async (context) => {
    if (!hasPgvector) context.skip('this server has no pgvector');
    const store = createPgVectorStore({ executor: pool, dimensions: 3 }).forTenant('acme_univ');
    await store.upsert([
      { id: 'near', vector: [1, 0.1, 0] },
      { id: 'far', vector: [0, 0, 1] },
    ]);
    expect((await store.query({ vector: [1, 0, 0], topK: 1 }))[0]?.id).toBe('near');
  });
});
