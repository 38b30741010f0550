import { fileURLToPath } from 'node:url';
import { MtPaasError } from '@mt-paas/context';
import { createPgDriver, openEmbeddedDatabase, readMigrationsFolder, type SqlDriver } from '@mt-paas/db';

/** Where the simulator keeps its tables. */
export interface SimDatabaseOptions {
  /** A Postgres URL (`DATABASE_URL`); without one, the embedded PGlite database is used. */
  databaseUrl?: string;
  /** PGlite's folder when no URL is given; `'memory'` keeps nothing. @default '.data/market-sim' */
  dataDir?: string;
}

const MIGRATIONS = fileURLToPath(new URL('../drizzle', import.meta.url));

/**
 * Opens the simulator's database — a Postgres server or embedded PGlite through `@mt-paas/db`'s
 * drivers, so there is one code path (drizzle over either) — and applies its migrations once each,
 * under an advisory lock (several simulators may share one database).
 */
export async function openSimDatabase(options: SimDatabaseOptions = {}): Promise<SqlDriver> {
  const driver =
    options.databaseUrl !== undefined && options.databaseUrl !== ''
      ? createPgDriver({ connectionString: options.databaseUrl, max: 5 })
      : await openEmbeddedDatabase({ dataDir: options.dataDir ?? '.data/market-sim' });
  try {
    const migrations = readMigrationsFolder(MIGRATIONS);
    await driver.transaction(async (session) => {
      await session.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['market_sim.migrations']);
      await session.exec(
        'CREATE SCHEMA IF NOT EXISTS market_sim; CREATE TABLE IF NOT EXISTS market_sim.__migrations (tag text PRIMARY KEY, hash text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      const done = await session.query<{ tag: string; hash: string }>(
        'SELECT tag, hash FROM market_sim.__migrations',
      );
      const applied = new Map(done.rows.map((row) => [row.tag, row.hash]));
      for (const migration of migrations) {
        const hash = applied.get(migration.tag);
        if (hash === migration.hash) continue;
        if (hash !== undefined) {
          throw new MtPaasError(
            'CONFIG_INVALID',
            `The simulator's migration ${migration.tag} changed after it was applied to this database; use a new database (or delete .data/market-sim).`,
          );
        }
        for (const statement of migration.statements) await session.exec(statement);
        await session.query('INSERT INTO market_sim.__migrations (tag, hash) VALUES ($1, $2)', [
          migration.tag,
          migration.hash,
        ]);
      }
    });
  } catch (error) {
    await driver.close();
    throw error;
  }
  return driver;
}
