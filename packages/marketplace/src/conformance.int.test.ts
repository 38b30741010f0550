import { createCatalog } from '@mt-paas/db';
import { createTestDatabase, describeWithPostgres } from '@mt-paas/test-env';
import { ADAPTERS } from './__fixtures__/apps.js';
import { describeMarketplaceConformance } from './__fixtures__/conformance.js';
import { createCatalogReceiptStore } from './receipts.js';

/** The conformance suite for Fastify, Express and Hono with receipts in the real catalog (Postgres). */
describeWithPostgres('marketplace routes on Postgres', () => {
  describeMarketplaceConformance(ADAPTERS, async () => {
    const database = await createTestDatabase({ label: 'market_conformance' });
    const catalog = await createCatalog({ connectionString: database.url });
    await catalog.migrate();
    return {
      receipts: createCatalogReceiptStore({ driver: catalog.driver, schema: catalog.schema }),
      async receiptCount() {
        const result = await catalog.driver.query<{ count: string }>(
          `SELECT count(*) AS count FROM "${catalog.schema}".webhook_receipts`,
        );
        return Number(result.rows[0]?.count);
      },
      async close() {
        await catalog.close();
        await database.drop();
      },
    };
  });
});
