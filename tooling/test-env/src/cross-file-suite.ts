import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from './guards.js';
import { requireRedis, type TestRedis, testRedis } from './redis.js';
import { providedTestEnv, testBackend } from './test-backend.js';
import { createTestDatabase, defineTestTemplate, type TestDatabase } from './test-database.js';

/**
 * The suite both `cross-file-a.int.test.ts` and `cross-file-b.int.test.ts` run: two test files
 * (so two vitest module scopes, possibly two workers) each clone one template and compare their
 * database and Redis prefix with the other file's through a registry in Redis. The proof needs
 * two files; the code lives once, here.
 */
export function crossFileSuite(file: 'a' | 'b'): void {
  describeWith(['postgres', 'redis'], `cross-file isolation (file ${file})`, () => {
    let database: TestDatabase;

    beforeAll(async () => {
      database = await createTestDatabase({ template: catalogTemplate });
    });
    afterAll(async () => {
      await database?.drop();
    });

    it('clones the shared template, built once per run', async () => {
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        const { rows } = await client.query('SELECT id, seats FROM plans ORDER BY id');
        expect(rows).toEqual([
          { id: 'basic', seats: 5 },
          { id: 'pro', seats: 50 },
        ]);
        // A clone is a copy: changing it leaves the template (and the other file's clone) alone.
        await client.query('INSERT INTO plans VALUES ($1, 1)', [`file_${file}`]);
      } finally {
        await client.end();
      }
      expect(await templateBuildCount(testRedis().url)).toBe(1);
    });

    it('gets a database and a Redis prefix different from the other file', async () => {
      const other = await registerAndCompare(file, database, testRedis());
      if (other) {
        const client = new pg.Client({ connectionString: database.url });
        await client.connect();
        try {
          const { rows } = await client.query("SELECT id FROM plans WHERE id LIKE 'file_%'");
          expect(rows).toEqual([{ id: `file_${file}` }]);
        } finally {
          await client.end();
        }
      }
    });
  });
}

/** One template both files clone (templates are per vitest project, so the build counter is too). */
const catalogTemplate = defineTestTemplate('xfile_catalog', async (url) => {
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

interface FileRecord {
  file: string;
  database: string;
  prefix: string;
}

/** Records this file; when the other file has recorded too, checks both differ. Returns the other record, if any. */
async function registerAndCompare(
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

async function templateBuildCount(redisUrl: string): Promise<number> {
  const client = new Redis(redisUrl);
  try {
    return Number(
      await client.get(`mtp:t:${testBackend().runId}:xfile-template-builds:${providedTestEnv().projectName}`),
    );
  } finally {
    client.disconnect();
  }
}
