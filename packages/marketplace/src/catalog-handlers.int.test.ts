import { type Catalog, createCatalog } from '@mt-paas/db';
import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import { afterAll, beforeAll } from 'vitest';
import { catalogHandlerSuite } from './__fixtures__/catalog-handlers.js';

describeWithPostgres('handlers writing through the catalog, Postgres catalog', () => {
  const database = useTestDatabase({ label: 'market_catalog_handlers' });
  let catalog: Catalog;
  beforeAll(async () => {
    catalog = await createCatalog({ connectionString: database.url });
    await catalog.migrate();
  });
  afterAll(async () => {
    await catalog?.close();
  });
  catalogHandlerSuite(() => catalog);
});
