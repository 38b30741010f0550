// Experiment (not part of `pnpm bench`): Postgres backend CPU per protocol message of a tenant unit of work.
//   node bench/experiments/db-message-cost.mjs [iterations=3000] [rounds=3]
// One connection per sequence, each unit awaited (no concurrency, so no queueing in the numbers), sequences
// interleaved per round, median. Backend CPU from /proc/<backend pid>/schedstat (Linux, server on this machine).
// The statements are the text @mt-paas/db sends (scopeSql / checkSql / RESET_SQL of src/unit-of-work.ts and
// src/session-reset.ts, copied here: they are not exported; row mode, tenant t1) around a
// primary-key read of an RLS table (1 000 rows, 10 tenants), read by a NOSUPERUSER NOBYPASSRLS role.
import { readFileSync } from 'node:fs';
import pg from 'pg';

const N = Number(process.argv[2] ?? 3000);
const ROUNDS = Number(process.argv[3] ?? 3);
const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
await admin.connect();
const db = `mtp_bench_msg_${process.pid}`;
const role = `mtp_bench_msg_app_${process.pid}`;
await admin.query(`CREATE DATABASE ${db}`);
await admin.query(`CREATE ROLE ${role} LOGIN NOSUPERUSER NOBYPASSRLS`);
const url = (user) => `postgres://${user}@127.0.0.1:5432/${db}`;
try {
  const owner = new pg.Client({ connectionString: url('postgres') });
  await owner.connect();
  await owner.query(`CREATE TABLE items (tenant_id text NOT NULL, id integer PRIMARY KEY, name text NOT NULL);
    INSERT INTO items SELECT 't' || (i % 10), i, 'item ' || i FROM generate_series(1, 1000) i;
    ALTER TABLE items ENABLE ROW LEVEL SECURITY;
    CREATE POLICY tenant ON items USING (tenant_id = current_setting('app.tenant_id', true));
    GRANT SELECT ON items TO ${role}; ANALYZE items;`);
  await owner.end();
  const scope = { tenantId: 't1' };
  const { scopeSql, checkSql, RESET_SQL } = loadSql();
  const begin = scopeSql(scope, { begin: true });
  const commit = `${checkSql(scope)}; COMMIT`;
  const read = { text: 'select "id", "name" from "items" where "items"."id" = $1', rowMode: 'array' };
  const q = (c, id) => c.query({ ...read, values: [id] });
  const sequences = {
    'unscoped read (owner, 1 message)': { user: 'postgres', run: (c, i) => q(c, (i % 100) * 10 + 1) },
    'scoped unit as shipped (4 messages)': {
      run: async (c, i) => {
        await c.query(begin);
        await q(c, (i % 100) * 10 + 1);
        await c.query(commit);
        await c.query(RESET_SQL);
      },
    },
    'without DISCARD ALL (3)': {
      run: async (c, i) => {
        await c.query(begin);
        await q(c, (i % 100) * 10 + 1);
        await c.query(commit);
      },
    },
    'without DISCARD ALL and check: BEGIN;set_config / read / COMMIT (3)': {
      run: async (c, i) => {
        await c.query(begin);
        await q(c, (i % 100) * 10 + 1);
        await c.query('COMMIT');
      },
    },
    'set_config($2) in a CTE of the read: one statement (NOT a safe design: evaluation order is not guaranteed; a floor)':
      {
        // A floor: scope and read as ONE statement (no second statement to parse, plan and answer). Not usable as
        // a design (Postgres does not promise the CTE runs before the policy is evaluated), only a lower bound.
        run: (c, i) =>
          c.query({
            text: `with s as (select set_config('app.tenant_id', $2, true)) select "id", "name" from "items", s where "items"."id" = $1`,
            values: [(i % 100) * 10 + 1, 't1'],
            rowMode: 'array',
          }),
      },
    'one Sync: set_config($1, true) / read / check as extended messages, then DISCARD ALL (2 round trips here)':
      {
        run: async (c, i) => {
          await sendOneSync(c, [
            { text: "select set_config('app.tenant_id', $1, true)", values: ['t1'] },
            { text: read.text, values: [String((i % 100) * 10 + 1)] },
            { text: checkSql(scope) },
          ]);
          await c.query(RESET_SQL);
        },
      },
    'one Sync, without DISCARD ALL': {
      run: (c, i) =>
        sendOneSync(c, [
          { text: "select set_config('app.tenant_id', $1, true)", values: ['t1'] },
          { text: read.text, values: [String((i % 100) * 10 + 1)] },
          { text: checkSql(scope) },
        ]),
    },
    'SELECT 1 (simple, the floor of one message)': { run: (c) => c.query('SELECT 1') },
    'DISCARD ALL alone': { run: (c) => c.query(RESET_SQL) },
  };
  const clients = {};
  for (const [name, s] of Object.entries(sequences)) {
    const c = new pg.Client({ connectionString: url(s.user ?? role) });
    await c.connect();
    const pid = (await c.query('select pg_backend_pid() as p')).rows[0].p;
    clients[name] = { c, pid, cpu: [], wall: [] };
    for (let i = 0; i < 300; i++) await s.run(c, i);
  }
  const backendNs = (pid) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
  const names = Object.keys(sequences);
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(k + r) % names.length];
      const { c, pid } = clients[name];
      const b0 = backendNs(pid);
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < N; i++) await sequences[name].run(c, i);
      clients[name].wall.push(Number(process.hrtime.bigint() - t0) / N / 1000);
      clients[name].cpu.push((backendNs(pid) - b0) / N / 1000);
    }
  }
  const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const { loadavg } = await import('node:os');
  console.log(
    `load ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}; ${N} units × ${ROUNDS} rounds, median`,
  );
  for (const name of names) {
    const x = clients[name];
    console.log(
      `${med(x.cpu).toFixed(1).padStart(6)} µs backend CPU/unit  ${med(x.wall).toFixed(0).padStart(5)} µs wall  [${x.cpu.map((v) => v.toFixed(1)).join(' ')}]  ${name}`,
    );
    await x.c.end();
  }
} finally {
  await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  await admin.query(`DROP ROLE IF EXISTS ${role}`);
  await admin.end();
}

/**
 * A node-postgres Submittable sending Parse/Bind/Execute for each statement and ONE Sync: the statements run in
 * one implicit transaction (set_config(…, true) holds until the Sync), one ReadyForQuery, one server flush.
 */
function oneSync(steps) {
  let resolve;
  let reject;
  const done = new Promise((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  let error;
  const rows = [];
  const submittable = {
    submit(connection) {
      for (const step of steps) {
        connection.parse({ text: step.text, types: [] });
        connection.bind({ values: step.values ?? [] });
        connection.execute({});
      }
      connection.sync();
    },
    handleRowDescription() {},
    handleDataRow(message) {
      rows.push(message.fields);
    },
    handleCommandComplete() {},
    handleEmptyQuery() {},
    handlePortalSuspended() {},
    handleError(message) {
      error = message;
    },
    handleReadyForQuery() {
      if (error === undefined) resolve(rows);
      else reject(error);
    },
  };
  return { submittable, done };
}

function sendOneSync(client, steps) {
  const { submittable, done } = oneSync(steps);
  client.query(submittable);
  return done;
}

function loadSql() {
  const held = `current_setting('app.tenant_id', true) IS NOT DISTINCT FROM 't1' AND current_user = session_user`;
  return {
    scopeSql: () => "BEGIN; SELECT set_config('app.tenant_id', 't1', true)",
    checkSql: () =>
      `SELECT CASE WHEN ${held} THEN 1 ELSE ('mt_paas_scope_changed: ' || coalesce(current_setting('app.tenant_id', true), '') || ' ' || current_user)::int END`,
    RESET_SQL: 'DISCARD ALL',
  };
}
