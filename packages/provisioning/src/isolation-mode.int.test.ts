import { assertIsolation } from '@mt-paas/db/testing';
import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { courses } from './__fixtures__/app-schema.js';
import { openEnvironment, type ProvisioningEnvironment } from './__fixtures__/environment.js';
import { createIsolationModeStore } from './isolation-mode.js';
import { testIsolationModeStore } from './testing.js';

/** Every isolation mode is one store object, and every store runs the same contract suite. */
describeWithPostgres('the isolation mode contract', () => {
  const database = useTestDatabase({ label: 'contract' });
  let environment: ProvisioningEnvironment;

  beforeAll(async () => {
    environment = await openEnvironment(database.url, 'ct');
  });
  afterAll(async () => {
    await environment?.close();
  });

  it.each(['row', 'schema', 'database'] as const)('%s mode passes it', async (mode) => {
    const store = createIsolationModeStore({
      mode,
      catalog: environment.catalog,
      tenantDb: environment.tenantDbs[mode],
      appConnectionString: environment.appUrl,
    });
    const report = await testIsolationModeStore({
      store,
      catalog: environment.catalog,
      table: courses,
      row: (tenantId, index) => ({ title: `${tenantId} course ${index}`, code: `c${index}` }),
      update: { seats: 12 },
    });
    assertIsolation(report);
    expect(report.tenants).toHaveLength(6);
    expect(report.checks).toBeGreaterThan(6 * 2 * 3 + 4);
  });
});
