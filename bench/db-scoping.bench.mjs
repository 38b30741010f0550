// Throughput of a tenant-scoped unit of work (@mt-paas/db) against the same query unscoped.
//
//   pnpm --filter @mt-paas/db build && pnpm --filter @mt-paas/bench bench:db
//
// Env: MT_PAAS_BENCH_DATABASE_URL (a superuser URL; default postgres://postgres@127.0.0.1:5432/postgres),
//      BENCH_SECONDS (per case and round, default 1), BENCH_ROUNDS (interleaved rounds, median kept, default 7),
//      BENCH_CONCURRENCY (comma-separated worker counts, default "1,16"),
//      BENCH_COMPARE_DIST (optional: path of another build's dist/index.js, e.g. the previous commit's; its
//      run() cases are measured in the same interleaved rounds, labelled [compare], for before/after numbers).
// Every case builds the same drizzle query; only the scoping around it differs.
// It creates (and at the end drops) a database `mtp_bench_db_<pid>_<time>` (or BENCH_DATABASE) and the role `mtp_bench_app`.
// Besides ops/s it prints CPU µs per operation of this process (the client) and of the bench database's
// Postgres backends (/proc/<pid>/schedstat; Linux, server on this machine).

import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { createCatalog, createTenantDb, ensureAppRole, tenantTable } from '@mt-paas/db';
import { and, eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { integer, text } from 'drizzle-orm/pg-core';
import pg from 'pg';

const adminUrl = process.env.MT_PAAS_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const seconds = Number(process.env.BENCH_SECONDS ?? 1);
const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
const concurrencies = (process.env.BENCH_CONCURRENCY ?? '1,16').split(',').map(Number);
let concurrency = concurrencies[0];
const compareDist = process.env.BENCH_COMPARE_DIST;
const compare = compareDist ? await import(pathToFileURL(compareDist).href) : undefined;
// Unique per run by default: two runs (or test-env's stale-run cleanup) must not drop each other's database.
const databaseName = process.env.BENCH_DATABASE ?? `mtp_bench_db_${process.pid}_${Date.now().toString(36)}`;
const appRole = 'mtp_bench_app';
const appPassword = 'mtp_bench_app_password';
const tenants = Array.from({ length: 10 }, (_, index) => `bench_${index}`);
const rowsPerTenant = 100;

const withDatabase = (url, database) => {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
};
const benchUrl = withDatabase(adminUrl, databaseName);
const appUrl = (() => {
  const parsed = new URL(benchUrl);
  parsed.username = appRole;
  parsed.password = appPassword;
  return parsed.toString();
})();

const items = tenantTable('items', {
  id: integer('id').primaryKey(),
  name: text('name').notNull(),
});

async function setup() {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${databaseName}`);
  await admin.end();
  const catalog = await createCatalog({ connectionString: benchUrl });
  await catalog.migrate();
  await ensureAppRole(catalog.driver, { role: appRole, password: appPassword });
  // The DDL tenantTable() + drizzle-kit produce for `items`, then FORCE as migrateTenants() does.
  await catalog.driver.exec(`
    CREATE TABLE items (
      tenant_id text DEFAULT nullif(current_setting('app.tenant_id', true), '') NOT NULL,
      id integer NOT NULL, name text NOT NULL,
      CONSTRAINT items_pkey PRIMARY KEY (tenant_id, id));
    ALTER TABLE items ENABLE ROW LEVEL SECURITY;
    ALTER TABLE items FORCE ROW LEVEL SECURITY;
    CREATE POLICY items_tenant_isolation ON items AS PERMISSIVE FOR ALL TO public
      USING (tenant_id = nullif(current_setting('app.tenant_id', true), ''))
      WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), ''));
    GRANT SELECT, INSERT, UPDATE, DELETE ON items TO ${appRole};
    INSERT INTO items (tenant_id, id, name)
      SELECT 'bench_' || t, i, 'item ' || i FROM generate_series(0, 9) t, generate_series(1, ${rowsPerTenant}) i;
    ANALYZE items;`);
  for (const id of tenants) await catalog.tenants.upsert({ id, name: id, status: 'active' });
  return catalog;
}

/**
 * CPU time (µs) of the Postgres backends serving the bench database, from /proc/<pid>/schedstat (Linux,
 * same machine); undefined when not readable. Backends of other databases (other jobs) are left out.
 */
let backendPids = [];
async function refreshBackends(admin) {
  const { rows } = await admin.query('SELECT pid FROM pg_stat_activity WHERE datname = $1', [databaseName]);
  backendPids = rows.map((row) => row.pid);
}
function serverCpuMicros() {
  let total = 0;
  for (const pid of backendPids) {
    try {
      total += Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
    } catch {
      // a backend that ended meanwhile
    }
  }
  return total;
}

/**
 * Runs `operation` from `concurrency` workers for `seconds`; returns operations per second, and the CPU
 * per operation of this process (the client: drizzle, pg, the unit of work) and of the database's backends.
 */
async function measure(operation, admin) {
  for (let index = 0; index < 50; index += 1) await operation(index); // warm-up
  await refreshBackends(admin);
  const clientBefore = process.cpuUsage();
  const serverBefore = serverCpuMicros();
  let count = 0;
  const end = performance.now() + seconds * 1000;
  const worker = async (offset) => {
    let index = offset;
    while (performance.now() < end) {
      await operation(index);
      index += concurrency;
      count += 1;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, (_, offset) => worker(offset)));
  const opsPerSecond = count / ((performance.now() - started) / 1000);
  const client = process.cpuUsage(clientBefore);
  return {
    opsPerSecond,
    clientMicros: (client.user + client.system) / count,
    serverMicros: (serverCpuMicros() - serverBefore) / count,
  };
}

const pick = (index) => ({ tenantId: tenants[index % tenants.length], id: (index % rowsPerTenant) + 1 });

async function runAll(catalog) {
  console.log(
    `\n== ${concurrency} concurrent worker(s); ${rounds} interleaved rounds of ${seconds} s per case (median) ==`,
  );
  const ownerPool = new pg.Pool({ connectionString: benchUrl, max: concurrency });
  const plainPool = new pg.Pool({ connectionString: appUrl, max: concurrency });
  // The final DROP DATABASE … WITH (FORCE) terminates connections: an idle one must not crash the run.
  for (const pool of [ownerPool, plainPool]) pool.on('error', () => {});
  const plain = drizzle(ownerPool);
  const perClient = new WeakMap();
  const tenantDbs = [];
  const scoped = async (pipeline, create = createTenantDb) => {
    const tenantDb = await create({
      mode: 'row',
      catalog,
      connectionString: appUrl,
      maxConnections: concurrency,
      pipeline,
    });
    tenantDbs.push(tenantDb);
    return tenantDb;
  };
  const pipelined = await scoped(true);
  const sequential = await scoped(false);
  const compared = compare ? await scoped(true, compare.createTenantDb) : undefined;
  const cases = [
    {
      // The same drizzle query, unscoped (explicit WHERE on tenant_id, owner role): one round trip.
      name: 'unscoped query (baseline)',
      roundTrips: 1,
      operation: (index) => {
        const { tenantId, id } = pick(index);
        return plain
          .select()
          .from(items)
          .where(and(eq(items.tenantId, tenantId), eq(items.id, id)));
      },
    },
    {
      name: 'naive BEGIN / set_config / query / COMMIT',
      roundTrips: 4,
      operation: async (index) => {
        const { tenantId, id } = pick(index);
        const client = await plainPool.connect();
        try {
          let db = perClient.get(client);
          if (db === undefined) {
            db = drizzle(client);
            perClient.set(client, db);
          }
          await client.query('BEGIN');
          await client.query("SELECT set_config('app.tenant_id', $1, true)", [tenantId]);
          await db.select().from(items).where(eq(items.id, id));
          await client.query('COMMIT');
        } finally {
          client.release();
        }
      },
    },
    {
      name: 'tenantDb.run(tx => query)  [pipelined, COMMIT pipelined]',
      roundTrips: 1,
      operation: (index) => {
        const { tenantId, id } = pick(index);
        return pipelined.forTenant(tenantId).run((tx) => tx.select().from(items).where(eq(items.id, id)));
      },
    },
    {
      name: 'tenantDb.run(async tx => await query)  [pipelined]',
      roundTrips: 2,
      operation: (index) => {
        const { tenantId, id } = pick(index);
        return pipelined
          .forTenant(tenantId)
          .run(async (tx) => await tx.select().from(items).where(eq(items.id, id)));
      },
    },
    {
      name: 'tenantDb.run(tx => query)  [pipeline: false]',
      roundTrips: 3,
      operation: (index) => {
        const { tenantId, id } = pick(index);
        return sequential.forTenant(tenantId).run((tx) => tx.select().from(items).where(eq(items.id, id)));
      },
    },
  ];
  if (compared) {
    cases.push(
      {
        name: 'tenantDb.run(tx => query)  [compare build]',
        roundTrips: 1,
        operation: (index) => {
          const { tenantId, id } = pick(index);
          return compared.forTenant(tenantId).run((tx) => tx.select().from(items).where(eq(items.id, id)));
        },
      },
      {
        name: 'tenantDb.run(async tx => await query)  [compare build]',
        roundTrips: 2,
        operation: (index) => {
          const { tenantId, id } = pick(index);
          return compared
            .forTenant(tenantId)
            .run(async (tx) => await tx.select().from(items).where(eq(items.id, id)));
        },
      },
    );
  }
  const samples = cases.map(() => []);
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  for (let round = 0; round < rounds; round += 1) {
    for (const [position, entry] of cases.entries())
      samples[position].push(await measure(entry.operation, admin));
  }
  await admin.end();
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const baseline = samples[0];
  const column = (position, key) => median(samples[position].map((sample) => sample[key]));
  // Per-round ratios to the baseline of the same round, then the median (and the range over rounds).
  const ratios = (position) =>
    samples[position].map((sample, round) => sample.opsPerSecond / baseline[round].opsPerSecond);
  console.log(`${'case'.padEnd(58)} RT   ops/s  median ratio (range)  client / server CPU µs per op`);
  for (const [position, entry] of cases.entries()) {
    const own = ratios(position);
    const pct = (value) => `${(value * 100).toFixed(0)}`;
    console.log(
      `${entry.name.padEnd(58)} ${String(entry.roundTrips).padStart(2)} ${column(position, 'opsPerSecond').toFixed(0).padStart(7)} ` +
        `${pct(median(own)).padStart(5)} % (${pct(Math.min(...own))}–${pct(Math.max(...own))} %)` +
        `  ${column(position, 'clientMicros').toFixed(1).padStart(6)} / ${column(position, 'serverMicros').toFixed(1).padStart(6)}`,
    );
  }
  for (const tenantDb of tenantDbs) await tenantDb.close();
  await plainPool.end();
  await ownerPool.end();
}

async function main() {
  const catalog = await setup();
  try {
    for (const value of concurrencies) {
      concurrency = value;
      await runAll(catalog);
    }
  } finally {
    await catalog.close();
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
    await admin.end();
  }
}

await main();
