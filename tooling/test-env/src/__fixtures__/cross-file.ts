import { Redis } from 'ioredis';
import pg from 'pg';
import { expect } from 'vitest';
import {
  defineTestTemplate,
  requireRedis,
  type TestDatabase,
  type TestRedis,
  testBackend,
} from '../index.js';
import { providedTestEnv } from '../test-backend.js';

/**
 * Shared by the two `cross-file-*.int.test.ts` files: one template both clone (templates are per
 * vitest project, so the counters are too), and a registry in Redis through which each file compares
 * itself with the other one.
 */
export const catalogTemplate = defineTestTemplate('xfile_catalog', async (url) => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('CREATE TABLE plans (id text PRIMARY KEY, seats int NOT NULL)');
    await client.query("INSERT INTO plans VALUES ('basic', 5), ('pro', 50)");
  } finally {
    await client.end();
  }
  const redis = new Redis(requireRedis().url);
  try {
    await redis.incr(`mtp:t:${testBackend().runId}:xfile-template-builds:${providedTestEnv().projectName}`);
  } finally {
    redis.disconnect();
  }
});

export interface FileRecord {
  file: string;
  database: string;
  prefix: string;
}

/** Records this file; when the other file has recorded too, checks both differ. Returns the other record, if any. */
export async function registerAndCompare(
  file: string,
  database: TestDatabase,
  redis: TestRedis,
): Promise<FileRecord | undefined> {
  const client = new Redis(redis.url);
  const registry = `mtp:t:${testBackend().runId}:xfile-registry:${providedTestEnv().projectName}`;
  try {
    const mine: FileRecord = { file, database: database.name, prefix: redis.prefix };
    await client.hset(registry, file, JSON.stringify(mine));
    const all = await client.hgetall(registry);
    const others = Object.entries(all)
      .filter(([key]) => key !== file)
      .map(([, value]) => JSON.parse(value) as FileRecord);
    for (const other of others) {
      expect(other.database).not.toBe(mine.database);
      expect(other.prefix).not.toBe(mine.prefix);
    }
    return others[0];
  } finally {
    client.disconnect();
  }
}

export async function templateBuildCount(redisUrl: string): Promise<number> {
  const client = new Redis(redisUrl);
  try {
    return Number(
      await client.get(`mtp:t:${testBackend().runId}:xfile-template-builds:${providedTestEnv().projectName}`),
    );
  } finally {
    client.disconnect();
  }
}
