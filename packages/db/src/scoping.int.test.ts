import { isMtPaasError, runWithTenant } from '@mt-paas/context';
import { createAppRole, describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { courses, enrollments } from './__fixtures__/app-schema.js';
import { FIXTURE_MIGRATIONS, type ModeEnvironment, openModeEnvironment } from './__fixtures__/environment.js';
import { transactionStatus } from './driver.js';
import { createTenantDb, type TenantDb } from './tenant-db.js';
import type { TenantTransaction } from './unit-of-work.js';

const isCode = (code: Parameters<typeof isMtPaasError>[1]) => (error: unknown) => isMtPaasError(error, code);

describeWithPostgres('scoped units of work on Postgres', () => {
  const database = useTestDatabase({ label: 'scoping' });
  let environment: ModeEnvironment;
  let admin: pg.Client;

  beforeAll(async () => {
    environment = await openModeEnvironment('row', database.url, 'scope');
    for (const id of ['univ_8', 'demo_7']) {
      await environment.catalog.tenants.upsert({ id, name: id, status: 'active' });
    }
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await environment?.close();
  });

  it('scopes run() to the current tenant and forTenant() to an explicit one', async () => {
    const { tenantDb } = environment;
    await runWithTenant({ tenantId: 'univ_8' }, () =>
      tenantDb.run((tx) => tx.insert(courses).values({ title: 'Algebra', code: 'alg' })),
    );
    await tenantDb
      .forTenant('demo_7')
      .run((tx) => tx.insert(courses).values({ title: 'Biology', code: 'alg' }));
    const univ = await runWithTenant({ tenantId: 'univ_8' }, () =>
      tenantDb.run((tx) => tx.select().from(courses)),
    );
    expect(univ.map((row) => [row.tenantId, row.title])).toEqual([['univ_8', 'Algebra']]);
    const demo = await tenantDb.forTenant('demo_7').run(async (tx) => {
      const rows = await tx.select().from(courses);
      const nested = await tx.transaction(async (inner) => inner.select().from(courses));
      return [...rows, ...nested];
    });
    expect(demo.map((row) => row.tenantId)).toEqual(['demo_7', 'demo_7']);
  });

  it('runs relational queries when given the schema', async () => {
    const withSchema = await createTenantDb({
      mode: 'row',
      catalog: environment.catalog,
      connectionString: environment.appUrl,
      schema: { courses, enrollments },
    });
    try {
      const rows = await withSchema
        .forTenant('univ_8')
        .run((tx) => tx.query.courses.findMany({ columns: { tenantId: true, title: true } }));
      expect(rows).toEqual([{ tenantId: 'univ_8', title: 'Algebra' }]);
    } finally {
      await withSchema.close();
    }
  });

  it('refuses a unit of work without tenant context and an unknown tenant', async () => {
    await expect(environment.tenantDb.run((tx) => tx.select().from(courses))).rejects.toSatisfy(
      isCode('TENANT_CONTEXT_MISSING'),
    );
    await expect(
      environment.tenantDb.forTenant('ghost_1').run((tx) => tx.select().from(courses)),
    ).rejects.toSatisfy(isCode('TENANT_NOT_FOUND'));
    expect(() => environment.tenantDb.forTenant('Bad-Id')).toThrow(/Invalid tenant id/);
  });

  it('refuses to start row mode as a superuser or a BYPASSRLS role', async () => {
    await expect(
      createTenantDb({ mode: 'row', catalog: environment.catalog, connectionString: database.url }),
    ).rejects.toSatisfy(
      (error) => isMtPaasError(error, 'CONFIG_INVALID') && /SUPERUSER/.test((error as Error).message),
    );
    const bypass = await createAppRole(database.url, { name: 'db_bypass', privileges: 'none' });
    await admin.query(`ALTER ROLE "${bypass.name}" BYPASSRLS`);
    await expect(
      createTenantDb({ mode: 'row', catalog: environment.catalog, connectionString: bypass.url }),
    ).rejects.toSatisfy(
      (error) => isMtPaasError(error, 'CONFIG_INVALID') && /BYPASSRLS/.test((error as Error).message),
    );
  });

  it('reports an unreachable server as TENANT_STORAGE_UNAVAILABLE', async () => {
    await expect(
      createTenantDb({
        mode: 'row',
        catalog: environment.catalog,
        connectionString: 'postgres://app@127.0.0.1:1/x',
      }),
    ).rejects.toSatisfy(isCode('TENANT_STORAGE_UNAVAILABLE'));
    // Schema mode checks the app role at startup too.
    await expect(
      createTenantDb({
        mode: 'schema',
        catalog: environment.catalog,
        connectionString: 'postgres://app@127.0.0.1:1/x',
      }),
    ).rejects.toSatisfy(isCode('TENANT_STORAGE_UNAVAILABLE'));
  });

  it("drops one tenant's rows in row mode", async () => {
    await environment.catalog.tenants.upsert({ id: 'gone_1', name: 'Gone', status: 'active' });
    const gone = environment.tenantDb.forTenant('gone_1');
    const [course] = await gone.run((tx) => tx.insert(courses).values({ title: 'G', code: 'g' }).returning());
    await gone.run((tx) => tx.insert(enrollments).values({ courseId: course!.id, student: 's1' }));
    const before = await environment.tenantDb.forTenant('univ_8').run((tx) => tx.select().from(courses));
    await environment.tenantDb.dropTenantStorage('gone_1');
    expect(await gone.run((tx) => tx.select().from(courses))).toEqual([]);
    expect(await gone.run((tx) => tx.select().from(enrollments))).toEqual([]);
    expect(await environment.tenantDb.forTenant('univ_8').run((tx) => tx.select().from(courses))).toEqual(
      before,
    );
  });

  it('refuses a tx kept beyond its callback', async () => {
    let kept: TenantTransaction | undefined;
    await environment.tenantDb.forTenant('univ_8').run((tx) => {
      kept = tx;
      return 1;
    });
    await expect(kept!.select().from(courses)).rejects.toSatisfy((error) =>
      /has ended/.test(String((error as Error & { cause?: Error }).cause?.message)),
    );
  });

  describe('round trips per unit of work (as the README states them)', () => {
    const log: string[] = [];
    let writes = 0;
    const pools: pg.Pool[] = [];
    const dbs: TenantDb[] = [];
    const open = async (pipeline: boolean) => {
      const pool = new pg.Pool({ connectionString: environment.appUrl, max: 1, ...({ pipeline } as object) });
      pool.on('error', () => {});
      pool.on('connect', (client) => {
        // Count the socket's writes (a corked batch leaves in one _writev).
        const stream = (client as unknown as { connection: { stream: Record<string, unknown> } }).connection
          .stream;
        for (const method of ['_write', '_writev'] as const) {
          const write = stream[method] as ((...args: unknown[]) => unknown) | undefined;
          if (typeof write !== 'function') continue;
          stream[method] = (...args: unknown[]) => {
            writes += 1;
            return write.apply(stream, args);
          };
        }
        const original = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
        (client as unknown as { query: unknown }).query = (...args: unknown[]) => {
          if (typeof args.at(-1) === 'function') return original(...args); // pool.query()
          const config = args[0];
          const text = typeof config === 'string' ? config : (config as { text: string }).text;
          const label = /^BEGIN/.test(text)
            ? 'scope'
            : /^(COMMIT|ROLLBACK)$/.test(text)
              ? 'end'
              : text === 'DISCARD ALL'
                ? 'reset'
                : text.startsWith('SELECT CASE WHEN')
                  ? 'check'
                  : 'query';
          log.push(`send ${label}`);
          const result = original(...args);
          result.then(
            () => log.push(`done ${label}`),
            () => log.push(`fail ${label}`),
          );
          return result;
        };
      });
      pools.push(pool);
      const tenantDb = await createTenantDb({ mode: 'row', catalog: environment.catalog, pool });
      dbs.push(tenantDb);
      // The first unit on a connection resets it before BEGIN (its previous user was not a unit of work).
      poolOf.set(tenantDb, pool);
      await tenantDb.forTenant('univ_8').run((tx) => tx.select().from(courses));
      await idle(tenantDb);
      return tenantDb;
    };
    const poolOf = new Map<TenantDb, pg.Pool>();
    /** The connection returns to the pool once its session reset is answered. */
    const idle = async (tenantDb: TenantDb) => {
      const pool = poolOf.get(tenantDb)!;
      for (let spin = 0; spin < 1000 && pool.idleCount < pool.totalCount; spin += 1) {
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    };
    /** Runs one unit and counts round trips: a statement sent after an answer arrived starts a new one. */
    const measure = async <T>(tenantDb: TenantDb, fn: (tx: TenantTransaction) => T | Promise<T>) => {
      log.length = 0;
      writes = 0;
      const before = tenantDb.stats.statements;
      await tenantDb.forTenant('univ_8').run(fn);
      await idle(tenantDb);
      let roundTrips = 0;
      let answered = true;
      for (const entry of log) {
        if (entry.startsWith('send') && answered) roundTrips += 1;
        answered = !entry.startsWith('send');
      }
      return { roundTrips, statements: tenantDb.stats.statements - before, writes, log: [...log] };
    };
    afterAll(async () => {
      for (const tenantDb of dbs) await tenantDb.close();
      for (const pool of pools) await pool.end();
    });

    it('pipelined: 1 for a returned query, N + 1 for N awaited queries', async () => {
      const tenantDb = await open(true);
      const returned = await measure(tenantDb, (tx) => tx.select().from(courses));
      // scope + query + (scope check; COMMIT) + DISCARD ALL: one write, one round trip.
      expect(returned).toMatchObject({ roundTrips: 1, statements: 4, writes: 1 });
      expect(returned.log).toEqual([
        'send scope',
        'send query',
        'send check',
        'send reset',
        'done scope',
        'done query',
        'done check',
        'done reset',
      ]);
      const one = await measure(tenantDb, async (tx) => {
        await tx.select().from(courses);
      });
      // The scope leaves with the awaited statement in one write; COMMIT is the second.
      expect(one).toMatchObject({ roundTrips: 2, statements: 4, writes: 2 });
      const parallel = await measure(tenantDb, async (tx) => {
        await Promise.all([tx.select().from(courses), tx.select().from(enrollments)]);
      });
      expect(parallel).toMatchObject({ roundTrips: 2, statements: 5, writes: 2 });
      const three = await measure(tenantDb, async (tx) => {
        await tx.select().from(courses);
        await tx.select().from(enrollments);
        await tx.select().from(courses);
      });
      expect(three).toMatchObject({ roundTrips: 4, statements: 6, writes: 4 });
      const noQuery = await measure(tenantDb, async () => 'nothing to do');
      expect(noQuery).toMatchObject({ roundTrips: 2, statements: 3 });
    });

    it('without pipelining: N + 2 (and the reset after the unit resolved)', async () => {
      const tenantDb = await open(false);
      const returned = await measure(tenantDb, (tx) => tx.select().from(courses));
      // check + COMMIT travel as one query; DISCARD ALL is sent once COMMIT is answered.
      expect(returned).toMatchObject({ roundTrips: 4, statements: 4 });
      expect(returned.log.slice(-2)).toEqual(['send reset', 'done reset']);
      expect(
        await measure(tenantDb, async (tx) => {
          await tx.select().from(courses);
          await tx.select().from(enrollments);
        }),
      ).toMatchObject({ roundTrips: 5, statements: 5 });
    });
  });

  it('leaves no search_path or tenant behind after failures in schema mode (pool of 2)', async () => {
    const pool = new pg.Pool({
      connectionString: environment.appUrl,
      max: 2,
      ...({ pipeline: true } as object),
    });
    pool.on('error', () => {});
    const schemaDb = await createTenantDb({
      mode: 'schema',
      catalog: environment.catalog,
      pool,
      adminConnectionString: database.url,
      migrationsFolder: FIXTURE_MIGRATIONS,
    });
    try {
      await environment.catalog.tenants.upsert({ id: 'sch_fail', name: 'S', status: 'active' });
      await schemaDb.createTenantStorage('sch_fail');
      const scope = schemaDb.forTenant('sch_fail');
      await scope.run((tx) => tx.insert(courses).values({ title: 'Kept', code: 'kept' }));
      await expect(
        scope.run(async (tx) => {
          await tx.insert(courses).values({ title: 'Lost', code: 'lost' });
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      await expect(scope.run((tx) => tx.execute(sql`select 1/0`))).rejects.toThrow();
      await expect(
        scope.run(async (tx) => {
          await tx.execute(sql`select 1/0`).catch(() => {});
        }),
      ).rejects.toSatisfy(isCode('INTERNAL'));
      expect((await scope.run((tx) => tx.select().from(courses))).map((row) => row.code)).toEqual(['kept']);
      const clients = await Promise.all([pool.connect(), pool.connect()]);
      try {
        for (const client of clients) {
          const { rows } = await client.query(
            "SELECT nullif(current_setting('app.tenant_id', true), '') AS tenant, current_setting('search_path') AS search_path",
          );
          expect(rows[0]).toEqual({ tenant: null, search_path: '"$user", public' });
          expect(transactionStatus(client)).toBe('I');
        }
      } finally {
        for (const client of clients) client.release();
      }
    } finally {
      await schemaDb.close();
      await pool.end();
    }
  });

  for (const pipeline of [true, false]) {
    describe(`after failures (pool of 2, pipeline ${pipeline})`, () => {
      let pool: pg.Pool;
      let tenantDb: TenantDb;
      let injectOnNextAcquire: 'fail-first-query' | undefined;

      beforeAll(async () => {
        pool = new pg.Pool({ connectionString: environment.appUrl, max: 2, ...({ pipeline } as object) });
        pool.on('error', () => {});
        pool.on('acquire', (client) => {
          if (injectOnNextAcquire !== 'fail-first-query') return;
          injectOnNextAcquire = undefined;
          const original = client.query.bind(client);
          (client as unknown as { query: unknown }).query = () => {
            (client as unknown as { query: unknown }).query = original;
            return Promise.reject(Object.assign(new Error('injected BEGIN failure'), { code: 'XX000' }));
          };
        });
        tenantDb = await createTenantDb({
          mode: 'row',
          catalog: environment.catalog,
          pool,
          migrationsFolder: FIXTURE_MIGRATIONS,
        });
      });
      afterAll(async () => {
        await tenantDb?.close();
        await pool?.end();
      });

      /** Checks out both connections of the pool and reads their session state. */
      const expectCleanConnections = async () => {
        const clients = await Promise.all([pool.connect(), pool.connect()]);
        try {
          for (const client of clients) {
            expect(transactionStatus(client)).toBe('I');
            const { rows } = await client.query(
              "SELECT nullif(current_setting('app.tenant_id', true), '') AS tenant, current_setting('search_path') AS search_path, (SELECT count(*)::int FROM courses) AS visible",
            );
            expect(rows[0]).toEqual({ tenant: null, search_path: '"$user", public', visible: 0 });
            expect(transactionStatus(client)).toBe('I');
          }
        } finally {
          for (const client of clients) client.release();
        }
      };
      const countFor = (tenantId: string) =>
        tenantDb.forTenant(tenantId).run(async (tx) => (await tx.select().from(courses)).length);

      it('a thrown callback rolls back and leaves clean connections', async () => {
        const before = await countFor('univ_8');
        await expect(
          tenantDb.forTenant('univ_8').run(async (tx) => {
            await tx.insert(courses).values({ title: 'Lost', code: `lost_${pipeline}` });
            throw new Error('boom');
          }),
        ).rejects.toThrow('boom');
        expect(await countFor('univ_8')).toBe(before);
        await expectCleanConnections();
      });

      it('a failed query rolls back and leaves clean connections', async () => {
        await expect(tenantDb.forTenant('univ_8').run((tx) => tx.execute(sql`select 1/0`))).rejects.toThrow();
        await expect(
          tenantDb.forTenant('univ_8').run((tx) => tx.insert(courses).values({ title: 'Dup', code: 'alg' })),
        ).rejects.toThrow();
        await expectCleanConnections();
      });

      it('an aborted transaction whose error was swallowed is not committed', async () => {
        const before = await countFor('univ_8');
        await expect(
          tenantDb.forTenant('univ_8').run(async (tx) => {
            await tx.insert(courses).values({ title: 'Half', code: `half_${pipeline}` });
            await tx.execute(sql`select 1/0`).catch(() => {});
            return 'returned normally';
          }),
        ).rejects.toThrow(/rolled back/);
        expect(await countFor('univ_8')).toBe(before);
        await expectCleanConnections();
      });

      it('a failed BEGIN discards the connection', async () => {
        injectOnNextAcquire = 'fail-first-query';
        await expect(
          tenantDb
            .forTenant('univ_8')
            .run((tx) => tx.insert(courses).values({ title: 'Never', code: `never_${pipeline}` })),
        ).rejects.toThrow();
        expect(injectOnNextAcquire).toBeUndefined();
        expect(
          (await tenantDb.forTenant('univ_8').run((tx) => tx.select().from(courses))).map((row) => row.code),
        ).not.toContain(`never_${pipeline}`);
        await expectCleanConnections();
      });

      it('a connection killed mid-transaction is discarded', async () => {
        await expect(
          tenantDb.forTenant('univ_8').run(async (tx) => {
            const result = await tx.execute(sql`select pg_backend_pid() as pid`);
            const pid = (result as unknown as { rows: Array<{ pid: number }> }).rows[0]!.pid;
            await admin.query('SELECT pg_terminate_backend($1)', [pid]);
            await tx.execute(sql`select 1`);
          }),
        ).rejects.toSatisfy(isCode('TENANT_STORAGE_UNAVAILABLE'));
        await expectCleanConnections();
        expect(await countFor('univ_8')).toBeGreaterThan(0);
      });
    });
  }
});
