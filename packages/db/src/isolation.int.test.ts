import { describeWithPostgres, testBackend, useTestDatabase, withDatabase } from '@mt-paas/test-env';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { courses } from './__fixtures__/app-schema.js';
import { type ModeEnvironment, openModeEnvironment } from './__fixtures__/environment.js';
import { checkCatalogGate } from './catalog-gate.js';
import { createPgDriver } from './driver.js';
import { testIsolationModeStore } from './isolation-contract.js';
import { assertIsolation, testIsolationMode } from './isolation-kit.js';

for (const mode of ['row', 'schema', 'database'] as const) {
  describeWithPostgres(`isolation kit, ${mode} mode on Postgres`, () => {
    const database = useTestDatabase({ label: `iso_${mode}` });
    let environment: ModeEnvironment;
    beforeAll(async () => {
      environment = await openModeEnvironment(mode, database.url, `iso${mode[0]}`);
    });
    afterAll(async () => {
      await environment?.close();
    });

    it('keeps 20 concurrent tenants apart', async () => {
      const report = await testIsolationMode({
        tenantDb: environment.tenantDb,
        table: courses,
        row: (tenantId, index) => ({ title: `${tenantId} course ${index}`, code: `c${index}` }),
        update: { seats: 12 },
      });
      assertIsolation(report);
      expect(report.checks).toBeGreaterThan(20 * 3 * 4);
      expect(report.tenants).toHaveLength(20);
    });

    it('passes the catalog gate', async () => {
      const url =
        mode === 'database'
          ? withDatabase(database.url, `mtp_t_${testBackend().runId}_iso${mode[0]}_iso_0`)
          : database.url;
      const admin = createPgDriver({ connectionString: url, max: 1 });
      try {
        expect(await checkCatalogGate(admin, { appRole: environment.appRole })).toEqual([]);
        const { rows } = await admin.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_class WHERE relname = 'courses' AND relforcerowsecurity",
        );
        expect(rows[0]!.n).toBe(mode === 'schema' ? 20 : 1);
      } finally {
        await admin.close();
      }
    });

    it('passes the isolation mode contract (tenantDb.isolation: scope, move window, export, checksums, drop, import)', async () => {
      expect(environment.tenantDb.isolation.mode).toBe(mode);
      const report = await testIsolationModeStore({
        store: environment.tenantDb.isolation,
        table: courses,
        row: (tenantId, index) => ({ title: `${tenantId} course ${index}`, code: `c${index}` }),
        update: { seats: 12 },
        tenants: 4,
      });
      assertIsolation(report);
      expect(report.tenants).toHaveLength(4);
      expect(report.checks).toBeGreaterThan(4 * 2 * 3 + 6);
    });
  });
}

describe('assertIsolation', () => {
  it('throws with the violations listed', () => {
    expect(() =>
      assertIsolation({
        mode: 'row',
        tenants: [],
        checks: 2,
        ok: false,
        violations: [{ step: 'select', tenantId: 'a_1', message: 'saw a row of tenant "b_2"' }],
      }),
    ).toThrow(/row mode \(1 of 2 checks\):\n- \[select\] a_1: saw a row of tenant "b_2"/);
  });
});
