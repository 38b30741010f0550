import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { type SQL, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/pglite';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPgVectorStore, type SqlExecutor } from './pgvector-store.js';
import { testVectorStore } from './testing.js';

// The README's adapter from a drizzle transaction (what @mt-paas/db's `run(tx => …)` hands out)
// to the store's `SqlExecutor`, run here on drizzle's PGlite driver.
function drizzleExecutor(tx: { execute(query: SQL): Promise<unknown> }): SqlExecutor {
  return {
    async query(text, params = []) {
      const parts = text.split(/\$(\d+)/);
      const chunks = parts.map((part, index) =>
        index % 2 === 0 ? sql.raw(part) : sql`${params[Number(part) - 1]}`,
      );
      const result = (await tx.execute(sql.join(chunks))) as { rows: unknown[] };
      return { rows: result.rows };
    },
  };
}

const PGLITE_START_TIMEOUT = 120_000;
let client: PGlite;
let db: ReturnType<typeof drizzle>;

beforeAll(async () => {
  client = await PGlite.create({ extensions: { vector } });
  db = drizzle({ client });
}, PGLITE_START_TIMEOUT);
afterAll(async () => {
  await client?.close();
});

testVectorStore(
  () =>
    createPgVectorStore({
      dimensions: 8,
      runScoped: (tenantId, work) =>
        db.transaction(async (tx) => {
          await tx.execute(sql`select set_config('app.tenant_id', ${tenantId}, true)`);
          return work(drizzleExecutor(tx));
        }),
    }),
  { name: 'pgvector store contract (drizzle transactions as runScoped)' },
);

it('binds parameters in order, including one used twice', async () => {
  const executor = drizzleExecutor(db);
  const { rows } = await executor.query('select $1::int + $2::int as sum, $1::int as again', [2, 3]);
  expect(rows).toEqual([{ sum: 5, again: 2 }]);
});
