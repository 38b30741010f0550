import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { courses } from './__fixtures__/app-schema.js';
import { type ModeEnvironment, openModeEnvironment } from './__fixtures__/environment.js';
import { checkCatalogGate } from './catalog-gate.js';
import { testIsolationMode } from './isolation-kit.js';

describeWithPostgres('catalog gate and kit negative controls (row mode)', () => {
  const database = useTestDatabase({ label: 'gate' });
  let environment: ModeEnvironment;
  let admin: pg.Client;
  const session = () => ({
    query: async <R>(text: string, params?: readonly unknown[]) => {
      const result = await admin.query(text, params as unknown[]);
      return { rows: result.rows as R[] };
    },
  });

  beforeAll(async () => {
    environment = await openModeEnvironment('row', database.url, 'gate');
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await environment?.close();
  });

  it('finds nothing in a database migrated by migrateTenants', async () => {
    expect(await checkCatalogGate(session(), { appRole: environment.appRole })).toEqual([]);
  });

  it('finds planted violations', async () => {
    const role = `"${environment.appRole}"`;
    await admin.query('BEGIN');
    try {
      await admin.query(`
        CREATE TABLE public.leaky (tenant_id text NOT NULL, id int PRIMARY KEY, email text);
        CREATE UNIQUE INDEX leaky_email ON public.leaky (email, tenant_id);
        CREATE POLICY everyone ON public.courses USING (true);
        CREATE POLICY maybe ON public.enrollments AS RESTRICTIVE
          USING (tenant_id = nullif(current_setting('app.tenant_id', true), '') OR random() < 0.5);
        ALTER TABLE public.enrollments OWNER TO ${role};
        ALTER ROLE ${role} SUPERUSER BYPASSRLS;
      `);
      const findings = await checkCatalogGate(session(), { appRole: environment.appRole });
      const codes = findings.map((finding) => `${finding.code} ${finding.object}`);
      expect(codes).toEqual(
        expect.arrayContaining([
          `APP_ROLE_SUPERUSER ${environment.appRole}`,
          `APP_ROLE_BYPASSRLS ${environment.appRole}`,
          'RLS_DISABLED public.leaky',
          'RLS_NOT_FORCED public.leaky',
          'POLICY_MISSING public.leaky',
          'PRIMARY_KEY_NOT_TENANT_LEADING public.leaky (leaky_pkey)',
          'UNIQUE_NOT_TENANT_LEADING public.leaky (leaky_email)',
          'POLICY_NOT_TENANT_SCOPED public.courses policy everyone',
          'POLICY_OR_BYPASS public.courses',
          'POLICY_OR_BYPASS public.enrollments policy maybe',
          'POLICY_VOLATILE_FUNCTION public.enrollments policy maybe',
          'APP_ROLE_OWNS_TABLE public.enrollments',
        ]),
      );
      expect(codes.some((code) => code.startsWith('RLS_NOT_FORCED public.courses'))).toBe(false);
      // Every finding says what to do about it.
      for (const finding of findings) {
        expect(finding.message).toMatch(
          /: .*(tenantTable|migrateTenants|ensureAppRole|ALTER|drop|remove|RESTRICTIVE|STABLE|another role)/,
        );
      }
    } finally {
      await admin.query('ROLLBACK');
    }
    expect(await checkCatalogGate(session(), { appRole: environment.appRole })).toEqual([]);
  });

  it('the isolation kit reports a table without row-level security', async () => {
    await admin.query('ALTER TABLE public.courses NO FORCE ROW LEVEL SECURITY');
    await admin.query('ALTER TABLE public.courses DISABLE ROW LEVEL SECURITY');
    try {
      const report = await testIsolationMode({
        tenantDb: environment.tenantDb,
        table: courses,
        row: (tenantId, index) => ({ title: `${tenantId} ${index}`, code: `n${index}` }),
        update: { seats: 1 },
        tenants: 3,
        rounds: 1,
        rowsPerTenant: 2,
        tenantPrefix: 'neg_',
      });
      expect(report.ok).toBe(false);
      expect([...new Set(report.violations.map((violation) => violation.step))]).toEqual(
        expect.arrayContaining([
          'select',
          'select-other',
          'update',
          'final-select',
          'insert-other',
          'no-context',
        ]),
      );
    } finally {
      await admin.query('ALTER TABLE public.courses ENABLE ROW LEVEL SECURITY');
      await admin.query('ALTER TABLE public.courses FORCE ROW LEVEL SECURITY');
    }
  });
});
