import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { isMtPaasError, type TenantId } from '@mt-paas/context';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgVectorStore, pgVectorSchemaSql, type SqlExecutor } from './pgvector-store.js';
import { deterministicVector, testVectorStore } from './testing.js';

let database: PGlite;

// Starting PGlite (a WASM Postgres) takes seconds, more when other test files share the CPU.
const PGLITE_START_TIMEOUT = 120_000;

beforeAll(async () => {
  database = await PGlite.create({ extensions: { vector } });
}, PGLITE_START_TIMEOUT);
afterAll(async () => {
  await database?.close();
});

testVectorStore(() => createPgVectorStore({ executor: database, dimensions: 8, model: 'contract' }), {
  name: 'pgvector store contract (PGlite + pglite-pgvector)',
});

testVectorStore(
  () =>
    createPgVectorStore({
      dimensions: 8,
      model: 'scoped',
      // A unit of work per operation, the way @mt-paas/db's tenant-scoped transactions run.
      runScoped: (_tenantId, work) => database.transaction((transaction) => work(transaction)),
    }),
  { name: 'pgvector store contract (runScoped transactions)' },
);

describe('createPgVectorStore on PGlite', () => {
  it('creates a table with tenant_id leading the primary key and an HNSW cosine index', async () => {
    const store = createPgVectorStore({ executor: database, dimensions: 4, model: 'text-embedding-3-small' });
    await store.forTenant('acme_univ').count();
    const indexes = await database.query<{ indexname: string; indexdef: string }>(
      `select indexname, indexdef from pg_indexes where tablename = 'mt_paas_vectors_text_embedding_3_small_4'`,
    );
    const definitions = indexes.rows.map((row) => row.indexdef);
    expect(definitions.some((definition) => /PRIMARY KEY|\(tenant_id, id\)/.test(definition))).toBe(true);
    expect(definitions.find((definition) => definition.includes('pkey'))).toMatch(/\(tenant_id, id\)/);
    expect(
      definitions.some((definition) => /USING hnsw \(embedding vector_cosine_ops\)/.test(definition)),
    ).toBe(true);
  });

  it('filters every statement by tenant_id', async () => {
    const statements: string[] = [];
    const executor: SqlExecutor = {
      query: (text, params) => {
        statements.push(text);
        return database.query(text, params);
      },
    };
    const store = createPgVectorStore({ executor, dimensions: 4, model: 'audit' }).forTenant('acme_univ');
    await store.upsert([{ id: 'a', vector: [1, 0, 0, 0], metadata: { lang: 'ko' } }]);
    await store.query({ vector: [1, 0, 0, 0], filter: { lang: 'ko' } });
    await store.count();
    await store.delete({ ids: ['a'] });
    await store.purgeTenant();
    const dataStatements = statements.filter(
      (text) => /mt_paas_vectors_audit_4/.test(text) && !/^create/i.test(text),
    );
    expect(dataStatements).toHaveLength(5);
    for (const text of dataStatements) expect(text).toMatch(/tenant_id = \$1|select \$1/);
  });

  it('writes rows under the tenant of the store, whatever the metadata says', async () => {
    const store = createPgVectorStore({ executor: database, dimensions: 4, model: 'owner' });
    await store
      .forTenant('acme_univ')
      .upsert([{ id: 'a', vector: [0, 1, 0, 0], metadata: { tenant_id: 'evil_corp' } }]);
    const rows = await database.query<{ tenant_id: TenantId }>(
      'select tenant_id from mt_paas_vectors_owner_4',
    );
    expect(rows.rows).toEqual([{ tenant_id: 'acme_univ' }]);
  });

  it('lets the vector(n) column refuse vectors of another width (a table created for another model)', async () => {
    const narrow = createPgVectorStore({ executor: database, dimensions: 4, model: 'width' });
    await narrow.forTenant('acme_univ').count();
    const wider = createPgVectorStore({
      executor: database,
      dimensions: 3,
      table: 'mt_paas_vectors_width_4',
      createSchema: false,
    });
    const error = await wider
      .forTenant('acme_univ')
      .upsert([{ id: 'x', vector: [1, 2, 3] }])
      .catch((caught: unknown) => caught);
    expect(isMtPaasError(error, 'CONFIG_INVALID')).toBe(true);
    expect((error as Error).message).toMatch(/holds vectors of 4 dimensions but this store writes 3/);
    expect((error as Error).cause).toMatchObject({
      message: expect.stringMatching(/expected 4 dimensions, not 3/),
    });
  });

  it('says how to create a missing table when createSchema is off', async () => {
    const store = createPgVectorStore({
      executor: database,
      dimensions: 4,
      model: 'never_created',
      createSchema: false,
    });
    const error = await store
      .forTenant('acme_univ')
      .count()
      .catch((caught: unknown) => caught);
    expect(isMtPaasError(error, 'CONFIG_INVALID')).toBe(true);
    expect((error as Error).message).toMatch(/pgVectorSchemaSql\(\)/);
  });

  it(
    'explains how to get pgvector when a PGlite has no vector extension',
    async () => {
      const bare = await PGlite.create();
      try {
        const store = createPgVectorStore({ executor: bare, dimensions: 4 });
        const error = await store
          .forTenant('acme_univ')
          .count()
          .catch((caught: unknown) => caught);
        expect(isMtPaasError(error, 'CONFIG_INVALID')).toBe(true);
        expect((error as Error).message).toMatch(/pgvector/);
        expect((error as Error).message).toMatch(/extensions: \{ vector \}/);
      } finally {
        await bare.close();
      }
    },
    PGLITE_START_TIMEOUT,
  );

  it(
    'opens and closes its own embedded PGlite when given no database',
    async () => {
      const store = createPgVectorStore({ dimensions: 3 });
      const tenant = store.forTenant('acme_univ');
      await tenant.upsert([
        { id: 'near', vector: [1, 0.1, 0] },
        { id: 'far', vector: [0, 0, 1] },
      ]);
      expect((await tenant.query({ vector: [1, 0, 0], topK: 1 }))[0]?.id).toBe('near');
      await store.close();
    },
    PGLITE_START_TIMEOUT,
  );

  it('refuses identifiers that are not safe SQL names and dimensions above the HNSW limit', () => {
    expect(() =>
      createPgVectorStore({ executor: database, dimensions: 4, table: 'vectors; drop table x' }),
    ).toThrow(/identifier/);
    expect(() => createPgVectorStore({ executor: database, dimensions: 3072 })).toThrow(/2000/);
  });

  it(
    'gives a tenant with a small share of the table topK matches when Postgres walks the HNSW index',
    async () => {
      const big = Array.from({ length: 1500 }, (_, index) => ({
        id: `big-${index}`,
        vector: deterministicVector(`big-${index}`, 8),
      }));
      const small = Array.from({ length: 60 }, (_, index) => ({
        id: `small-${index}`,
        vector: deterministicVector(`small-${index}`, 8),
      }));
      const store = createPgVectorStore({ executor: database, dimensions: 8, model: 'iterative' });
      const naive = createPgVectorStore({
        executor: database,
        dimensions: 8,
        model: 'iterative',
        iterativeScan: 'off',
      });
      for (let offset = 0; offset < big.length; offset += 500) {
        await store.forTenant('big_univ').upsert(big.slice(offset, offset + 500));
      }
      await store.forTenant('small_univ').upsert(small);
      await database.exec('analyze mt_paas_vectors_iterative_8');
      // Make the planner prefer the HNSW index's order over sorting the tenant's rows, as it does on large tables.
      await database.exec('set enable_sort = off');
      try {
        const query = { vector: deterministicVector('question', 8), topK: 20 };
        const withoutIterativeScan = await naive.forTenant('small_univ').query(query);
        expect(withoutIterativeScan.length).toBeLessThan(20); // the failure mode this option exists for
        const matches = await store.forTenant('small_univ').query(query);
        expect(matches).toHaveLength(20);
        expect(matches.every((match) => match.id.startsWith('small-'))).toBe(true);
        const scores = matches.map((match) => match.score);
        expect(scores).toEqual([...scores].sort((a, b) => b - a));
      } finally {
        await database.exec('reset enable_sort');
      }
    },
    PGLITE_START_TIMEOUT,
  );

  it('scopes the iterative scan to one transaction on a checked-out client of a pg Pool', async () => {
    const log: string[] = [];
    let released = 0;
    // The shape of a pg Pool (query, connect, idleCount) over the PGlite, recording what runs where.
    const pool = {
      idleCount: 0,
      query: (text: string, params?: unknown[]) => {
        log.push(`pool: ${text.split('\n')[0]}`);
        return database.query(text, params);
      },
      connect: async () => ({
        query: (text: string, params?: unknown[]) => {
          log.push(`client: ${text.split('\n')[0]}`);
          return database.query(text, params);
        },
        release: () => {
          released++;
        },
      }),
    };
    const store = createPgVectorStore({ executor: pool, dimensions: 4, model: 'pool' }).forTenant(
      'acme_univ',
    );
    await store.upsert([{ id: 'a', vector: [1, 0, 0, 0] }]);
    log.length = 0;
    expect((await store.query({ vector: [1, 0, 0, 0] }))[0]?.id).toBe('a');
    expect(log).toEqual([
      'client: begin',
      "client: select set_config('hnsw.iterative_scan', $1, true)",
      'client: select id, metadata, 1 - (embedding <=> $2::vector) as score',
      'client: commit',
    ]);
    expect(released).toBe(1);
    expect(
      (await database.query<{ value: string }>(`select current_setting('hnsw.iterative_scan') as value`))
        .rows[0]?.value,
    ).toBe('off'); // set_config(..., true) ended with the transaction: nothing leaks into the next request
  });

  it('keeps long model names apart in table and index names (Postgres cuts identifiers at 63 bytes)', () => {
    const prefix = 'sentence-transformers/paraphrase-multilingual-mpnet-base';
    const [tableA, indexA] = pgVectorSchemaSql({ dimensions: 768, model: `${prefix}-v2` });
    const [tableB, indexB] = pgVectorSchemaSql({ dimensions: 768, model: `${prefix}-v3` });
    const name = (sql: string | undefined, pattern: RegExp) => pattern.exec(sql ?? '')?.[1];
    const tableName = /create table if not exists "([^"]+)"/;
    const indexName = /create index if not exists "([^"]+)"/;
    expect(name(tableA, tableName)).not.toBe(name(tableB, tableName));
    expect(name(indexA, indexName)).not.toBe(name(indexB, indexName));
    for (const identifier of [name(tableA, tableName), name(indexA, indexName), name(indexB, indexName)]) {
      expect(identifier!.length).toBeLessThanOrEqual(63);
    }
    expect(name(tableA, tableName)).toMatch(/_768$/);
  });

  it('exposes its DDL for migrations', () => {
    const [table, hnsw] = pgVectorSchemaSql({ dimensions: 8, model: 'bge-m3' });
    expect(table).toMatch(/primary key \(tenant_id, id\)/);
    expect(table).toMatch(/vector\(8\)/);
    expect(hnsw).toMatch(/using hnsw \(embedding vector_cosine_ops\)/);
  });

  it('stores deterministic vectors exactly enough to rank them', async () => {
    const store = createPgVectorStore({ executor: database, dimensions: 16, model: 'rank' }).forTenant(
      'acme_univ',
    );
    await store.upsert(['a', 'b', 'c'].map((id) => ({ id, vector: deterministicVector(id, 16) })));
    const [match] = await store.query({ vector: deterministicVector('b', 16), topK: 1 });
    expect(match?.id).toBe('b');
  });
});
