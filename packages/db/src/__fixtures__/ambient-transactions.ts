import { isMtPaasError } from '@mt-paas/context';
import { sql, TransactionRollbackError } from 'drizzle-orm';
import { expect, it } from 'vitest';
import type { Catalog } from '../catalog.js';

/**
 * Calls made through the catalog from inside `catalog.driver.transaction(fn)` run in that transaction
 * (Postgres and PGlite): shared by `ambient-transaction.test.ts` (PGlite) and `.int.test.ts` (Postgres).
 */
export function ambientTransactionSuite(getCatalog: () => Catalog): void {
  const txid = async (catalog: Catalog) =>
    (await catalog.driver.query<{ id: string }>('SELECT txid_current()::text AS id')).rows[0]?.id;

  it('runs catalog calls made inside driver.transaction in that transaction, and commits them with it', async () => {
    const catalog = getCatalog();
    const db = catalog.driver.db;
    const result = await catalog.driver.transaction(async (session) => {
      const own = (await session.query<{ id: string }>('SELECT txid_current()::text AS id')).rows[0]?.id;
      expect(await txid(catalog)).toBe(own);
      const viaDrizzle = await db.execute(sql`SELECT txid_current()::text AS id`);
      expect((viaDrizzle as unknown as { rows: { id: string }[] }).rows[0]?.id).toBe(own);
      const tenant = await catalog.tenants.upsert({ id: 'amb_commit', name: 'A', status: 'active' });
      await catalog.tenants.setEntitlements('amb_commit', {
        plan: 'pro',
        features: { chat: true },
        limits: { rpm: 5, quotas: {} },
      });
      await catalog.tenants.addDomains('amb_commit', ['amb-commit.example']);
      const seen = await session.query<{ plan: string }>(
        `SELECT plan FROM "${catalog.schema}".tenants WHERE id = 'amb_commit'`,
      );
      expect(seen.rows).toEqual([{ plan: 'pro' }]);
      return tenant.id;
    });
    expect(result).toBe('amb_commit');
    const stored = await catalog.directory.get('amb_commit' as never);
    expect(stored).toMatchObject({ plan: 'pro', domains: ['amb-commit.example'] });
    expect(await catalog.directory.resolveDomain('amb-commit.example')).toBe('amb_commit');
  });

  it('rolls back the catalog writes of a transaction that throws (upsert, entitlements, domains, usage, audit)', async () => {
    const catalog = getCatalog();
    await catalog.tenants.upsert({ id: 'amb_keep', name: 'Keep', status: 'active', plan: 'free' });
    await expect(
      catalog.driver.transaction(async () => {
        await catalog.tenants.upsert({ id: 'amb_gone', name: 'Gone', status: 'active' });
        await catalog.tenants.update('amb_keep', { name: 'Changed' });
        await catalog.tenants.setEntitlements('amb_keep', {
          plan: 'pro',
          features: {},
          limits: { rpm: null, quotas: {} },
        });
        await catalog.tenants.addDomains('amb_keep', ['amb-keep.example']);
        await catalog.usage.record([
          {
            tenantId: 'amb_keep',
            meter: 'tokens',
            quantity: 1,
            at: new Date(),
            idempotencyKey: 'amb-1',
          } as never,
        ]);
        await catalog.driver.exec(
          `UPDATE "${catalog.schema}".tenants SET description = 'exec' WHERE id = 'amb_keep'`,
        );
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    expect(await catalog.directory.get('amb_gone' as never)).toBeUndefined();
    const kept = await catalog.directory.get('amb_keep' as never);
    expect(kept).toMatchObject({ name: 'Keep', plan: 'free', domains: [] });
    expect(kept?.metadata.description).toBeUndefined();
    const usage = await catalog.driver.query(
      `SELECT 1 FROM "${catalog.schema}".usage_ledger WHERE idempotency_key = 'amb-1'`,
    );
    expect(usage.rows).toEqual([]);
  });

  it('nests transaction() as a savepoint: a failing inner call undoes only its own writes', async () => {
    const catalog = getCatalog();
    await catalog.driver.transaction(async () => {
      await catalog.tenants.upsert({ id: 'amb_outer', name: 'Outer', status: 'active' });
      await expect(
        catalog.driver.transaction(async () => {
          await catalog.tenants.upsert({ id: 'amb_inner_fail', name: 'Inner', status: 'active' });
          throw new Error('inner failed');
        }),
      ).rejects.toThrow('inner failed');
      // A failing statement inside the savepoint does not abort the outer transaction either.
      await expect(
        catalog.driver.transaction(async (session) => {
          await catalog.tenants.upsert({ id: 'amb_inner_sql', name: 'Inner', status: 'active' });
          await session.query('SELECT 1/0');
        }),
      ).rejects.toThrow();
      // addDomains (a drizzle transaction inside) conflicts → its savepoint rolls back, the outer goes on.
      await catalog.tenants.upsert({ id: 'amb_other', name: 'Other', status: 'active' });
      await catalog.tenants.addDomains('amb_other', ['amb-taken.example']);
      await expect(
        catalog.tenants.addDomains('amb_outer', ['amb-own.example', 'amb-taken.example']),
      ).rejects.toSatisfy((error) => isMtPaasError(error, 'CONFLICT'));
      // drizzle's tx.rollback() inside a nested db.transaction rolls back to its savepoint only.
      await expect(
        catalog.driver.db.transaction(async (tx) => {
          await tx.execute(
            sql.raw(`INSERT INTO "${catalog.schema}".tenants (id, name) VALUES ('amb_inner_rb', 'RB')`),
          );
          tx.rollback();
        }),
      ).rejects.toBeInstanceOf(TransactionRollbackError);
      await catalog.driver.transaction(async () => {
        await catalog.tenants.upsert({ id: 'amb_inner_ok', name: 'Inner', status: 'active' });
        await catalog.driver.transaction(() => catalog.tenants.update('amb_inner_ok', { name: 'Deep' }));
      });
    });
    expect(await catalog.directory.get('amb_outer' as never)).toMatchObject({ domains: [] });
    expect(await catalog.directory.get('amb_inner_fail' as never)).toBeUndefined();
    expect(await catalog.directory.get('amb_inner_sql' as never)).toBeUndefined();
    expect(await catalog.directory.get('amb_inner_rb' as never)).toBeUndefined();
    expect(await catalog.directory.get('amb_inner_ok' as never)).toMatchObject({ name: 'Deep' });
    expect(await catalog.directory.resolveDomain('amb-own.example')).toBeUndefined();
  });

  it('a committed savepoint is still rolled back when the outer transaction fails', async () => {
    const catalog = getCatalog();
    await expect(
      catalog.driver.transaction(async () => {
        await catalog.driver.transaction(() =>
          catalog.tenants.upsert({ id: 'amb_nested_gone', name: 'N', status: 'active' }),
        );
        await catalog.driver.db.transaction(async (tx) => {
          await tx.execute(
            sql.raw(`INSERT INTO "${catalog.schema}".tenants (id, name) VALUES ('amb_nested_gone2', 'N2')`),
          );
        });
        throw new Error('outer failed');
      }),
    ).rejects.toThrow('outer failed');
    expect(await catalog.directory.get('amb_nested_gone' as never)).toBeUndefined();
    expect(await catalog.directory.get('amb_nested_gone2' as never)).toBeUndefined();
  });

  it('runs concurrent nested calls of one transaction one after the other (one savepoint stack)', async () => {
    const catalog = getCatalog();
    await catalog.driver.transaction(async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 6 }, (_, index) =>
          catalog.driver.transaction(async () => {
            await catalog.tenants.upsert({ id: `amb_par_${index}`, name: `P${index}`, status: 'active' });
            await new Promise((resolve) => setTimeout(resolve, 5 * (6 - index)));
            if (index % 2 === 1) throw new Error(`odd ${index}`);
          }),
        ),
      );
      expect(results.map((result) => result.status)).toEqual([
        'fulfilled',
        'rejected',
        'fulfilled',
        'rejected',
        'fulfilled',
        'rejected',
      ]);
    });
    const page = await catalog.directory.list({ limit: 1000 });
    expect(page.tenants.map((tenant) => tenant.id).filter((id) => id.startsWith('amb_par_'))).toEqual([
      'amb_par_0',
      'amb_par_2',
      'amb_par_4',
    ]);
  });

  it('keeps independent transactions of different async contexts apart', async () => {
    const catalog = getCatalog();
    // On Postgres every transaction waits until all four have written, and again until all four have
    // looked (so all are open at once); PGlite has one connection and runs them one after the other.
    const written = barrier(catalog.driver.kind === 'pg' ? 4 : 1);
    const looked = barrier(catalog.driver.kind === 'pg' ? 4 : 1);
    const ids = await Promise.allSettled(
      Array.from({ length: 4 }, (_, index) =>
        catalog.driver.transaction(async (session) => {
          await catalog.tenants.upsert({ id: `amb_ctx_${index}`, name: `C${index}`, status: 'active' });
          await written();
          const own = (await session.query<{ id: string }>('SELECT txid_current()::text AS id')).rows[0]?.id;
          expect(await txid(catalog)).toBe(own);
          // Only its own uncommitted tenant is visible to each transaction.
          const visible = await session.query<{ id: string }>(
            `SELECT id FROM "${catalog.schema}".tenants WHERE id LIKE 'amb\\_ctx\\_%' ORDER BY id`,
          );
          await looked();
          if (catalog.driver.kind === 'pg') expect(visible.rows).toEqual([{ id: `amb_ctx_${index}` }]);
          if (index === 2) throw new Error('third failed');
          return own;
        }),
      ),
    );
    for (const result of ids)
      if (result.status === 'rejected') expect(String(result.reason)).toMatch(/third failed/);
    const fulfilled = ids.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    expect(fulfilled).toHaveLength(3);
    expect(new Set(fulfilled).size).toBe(3);
    const page = await catalog.directory.list({ limit: 1000 });
    expect(page.tenants.map((tenant) => tenant.id).filter((id) => id.startsWith('amb_ctx_'))).toEqual([
      'amb_ctx_0',
      'amb_ctx_1',
      'amb_ctx_3',
    ]);
  });

  it('work that outlives its transaction runs outside it (not on the released connection)', async () => {
    const catalog = getCatalog();
    let later: (() => Promise<unknown>) | undefined;
    await expect(
      catalog.driver.transaction(async () => {
        later = () => catalog.tenants.upsert({ id: 'amb_later', name: 'Later', status: 'active' });
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    await later?.();
    expect(await catalog.directory.get('amb_later' as never)).toMatchObject({ name: 'Later' });
    expect(await catalog.driver.query('SELECT 1 AS one')).toEqual({ rows: [{ one: 1 }] });
  });
}

/** Resolves for everyone once `count` callers are waiting (`count` 1: never waits). */
function barrier(count: number): () => Promise<void> {
  let arrived = 0;
  let open: () => void = () => {};
  const all = new Promise<void>((resolve) => {
    open = resolve;
  });
  return () => {
    arrived += 1;
    if (arrived >= count) open();
    return count <= 1 ? Promise.resolve() : all;
  };
}
