import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { catalogTemplate, registerAndCompare, templateBuildCount } from './__fixtures__/cross-file.js';
import { createTestDatabase, describeWith, type TestDatabase, testRedis } from './index.js';

describeWith(['postgres', 'redis'], 'cross-file isolation (file b)', () => {
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
      await client.query("INSERT INTO plans VALUES ('file_b', 1)");
    } finally {
      await client.end();
    }
    expect(await templateBuildCount(testRedis().url)).toBe(1);
  });

  it('gets a database and a Redis prefix different from the other file', async () => {
    const other = await registerAndCompare('b', database, testRedis());
    if (other) {
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        const { rows } = await client.query("SELECT id FROM plans WHERE id LIKE 'file_%'");
        expect(rows).toEqual([{ id: 'file_b' }]);
      } finally {
        await client.end();
      }
    }
  });
});
