import { afterAll, beforeAll, describe } from 'vitest';
import { ambientTransactionSuite } from './__fixtures__/ambient-transactions.js';
import { type Catalog, createCatalog } from './catalog.js';

describe('catalog calls inside a catalog transaction, embedded PGlite', () => {
  let catalog: Catalog;
  beforeAll(async () => {
    catalog = await createCatalog({ dataDir: 'memory' });
    await catalog.migrate();
  }, 60_000);
  afterAll(async () => {
    await catalog?.close();
  });
  ambientTransactionSuite(() => catalog);
});
