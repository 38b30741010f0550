import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import { afterAll, beforeAll } from 'vitest';
import { ambientTransactionSuite } from './__fixtures__/ambient-transactions.js';
import { type Catalog, createCatalog } from './catalog.js';

describeWithPostgres('catalog calls inside a catalog transaction, Postgres', () => {
  const database = useTestDatabase({ label: 'ambient_tx' });
  let catalog: Catalog;
  beforeAll(async () => {
    catalog = await createCatalog({ connectionString: database.url, maxConnections: 8 });
    await catalog.migrate();
  });
  afterAll(async () => {
    await catalog?.close();
  });
  ambientTransactionSuite(() => catalog);
});
