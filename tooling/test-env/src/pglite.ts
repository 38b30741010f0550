import type { PGlite } from '@electric-sql/pglite';

export interface CreatePgliteDatabaseOptions {
  /** Runs once on the new instance before it is returned (e.g. migrations). */
  setup?: (db: PGlite) => Promise<void>;
}

/**
 * An in-memory PGlite (Postgres in WASM) instance for tests that can run embedded — the fallback when no
 * Postgres server is available, and the way to test the embedded driver itself. `@electric-sql/pglite` is
 * imported only when this is called. Close it with `await db.close()`.
 */
export async function createPgliteDatabase(options: CreatePgliteDatabaseOptions = {}): Promise<PGlite> {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = await PGlite.create();
  try {
    await options.setup?.(db);
  } catch (error) {
    await db.close().catch(() => {});
    throw error;
  }
  return db;
}
