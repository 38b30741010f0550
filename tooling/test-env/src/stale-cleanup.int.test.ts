import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { describeWith, quoteIdentifier, requirePostgres, testBackend, testRedis } from './index.js';
import { dropStaleRuns, openRunSession } from './postgres-admin.js';
import { deleteStaleRedisKeys } from './redis.js';
import { formatRunId, hostTag, randomSuffix, runSessionName } from './run-id.js';

describeWith(['postgres', 'redis'], 'clean-up of earlier runs', () => {
  const sessions: pg.Client[] = [];
  const created: string[] = [];

  afterAll(async () => {
    const { url } = requirePostgres();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    for (const name of created)
      await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`);
    await client.end();
    for (const session of sessions) await session.end();
  });

  it('drops databases, roles and keys of a crashed run and keeps those of a live one', async () => {
    const { url, serverVersion } = requirePostgres();
    const redis = testRedis();
    const startedAt = Date.now() - 3_600_000;
    // Pids far above any real pid limit: these runs cannot belong to a process of this machine.
    const crashed = formatRunId({ startedAt, pid: 36 ** 5 - 2, host: hostTag() });
    const alive = formatRunId({ startedAt, pid: 36 ** 5 - 3, host: 'zz99' });
    const suffix = randomSuffix(6);
    const crashedDb = `mtp_t_${crashed}_leftover_${suffix}`;
    const aliveDb = `mtp_t_${alive}_running_${suffix}`;
    const crashedRole = `mtp_r_${crashed}_app_${suffix}`;
    created.push(crashedDb, aliveDb);

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const redisClient = new Redis(redis.url);
    try {
      await client.query(`CREATE DATABASE ${quoteIdentifier(crashedDb)}`);
      await client.query(`CREATE DATABASE ${quoteIdentifier(aliveDb)}`);
      await client.query(`CREATE ROLE ${quoteIdentifier(crashedRole)} NOLOGIN`);
      await redisClient.set(`mtp:t:${crashed}:x_aaaaaa:k`, '1');
      await redisClient.set(`mtp:t:${alive}:x_bbbbbb:k`, '1');
      // The live run holds its marker session, as a running globalSetup does.
      sessions.push(await openRunSession(url, alive));

      const report = await dropStaleRuns(url, serverVersion, testBackend().runId);
      expect(report.databases).toContain(crashedDb);
      expect(report.roles).toContain(crashedRole);
      expect(report.databases).not.toContain(aliveDb);
      expect(report.liveRunIds.has(alive)).toBe(true);
      expect(report.liveRunIds.has(testBackend().runId)).toBe(true);

      const { rows } = await client.query<{ datname: string }>(
        'SELECT datname FROM pg_database WHERE datname = ANY($1) ORDER BY datname',
        [[crashedDb, aliveDb]],
      );
      expect(rows.map((row) => row.datname)).toEqual([aliveDb]);
      const roles = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [crashedRole]);
      expect(roles.rowCount).toBe(0);

      await deleteStaleRedisKeys(redis.url, report.liveRunIds);
      expect(await redisClient.exists(`mtp:t:${crashed}:x_aaaaaa:k`)).toBe(0);
      expect(await redisClient.exists(`mtp:t:${alive}:x_bbbbbb:k`)).toBe(1);
      await redisClient.del(`mtp:t:${alive}:x_bbbbbb:k`);
      expect(runSessionName(alive)).toContain(alive);
    } finally {
      redisClient.disconnect();
      await client.query(`DROP ROLE IF EXISTS ${quoteIdentifier(crashedRole)}`);
      await client.end();
    }
  });
});
