import { describe, expect, it } from 'vitest';
import { createPgliteDatabase } from './pglite.js';

// PGlite runs initdb in WASM on create: seconds on a small machine, hence the generous timeouts.
describe('createPgliteDatabase', () => {
  it('returns an in-memory Postgres with the setup applied', { timeout: 120_000 }, async () => {
    const db = await createPgliteDatabase({
      setup: async (instance) => {
        await instance.exec("CREATE TABLE plans (id text PRIMARY KEY); INSERT INTO plans VALUES ('basic');");
      },
    });
    try {
      expect((await db.query('SELECT id FROM plans')).rows).toEqual([{ id: 'basic' }]);
    } finally {
      await db.close();
    }
  });

  it('closes the instance and rethrows when the setup fails', { timeout: 120_000 }, async () => {
    await expect(
      createPgliteDatabase({
        setup: async (instance) => {
          await instance.exec('SELECT * FROM missing_table');
        },
      }),
    ).rejects.toThrow(/missing_table/);
  });
});
