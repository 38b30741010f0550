import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  /** Runs `plant` in an admin transaction, returns the gate's findings as "CODE object", rolls back. */
  const planted = async (plant: string): Promise<string[]> => {
    await admin.query('BEGIN');
    try {
      await admin.query(plant);
      const findings = await checkCatalogGate(session(), { appRole: environment.appRole });
      for (const finding of findings) expect(finding.message).toMatch(/: /);
      return findings.map((finding) => `${finding.code} ${finding.object}`);
    } finally {
      await admin.query('ROLLBACK');
    }
  };

  it('reports a permissive policy that compares tenant_id the wrong way, whatever its text', async () => {
    for (const using of [
      "tenant_id <> nullif(current_setting('app.tenant_id', true), '')",
      "tenant_id LIKE current_setting('app.tenant_id', true) || '%'",
      "tenant_id >= current_setting('app.tenant_id', true)",
      "current_setting('app.tenant_id', true) IS NOT NULL AND tenant_id IS NOT NULL",
      "tenant_id = coalesce(current_setting('app.tenant_id', true), tenant_id)",
    ]) {
      const codes = await planted(
        `DROP POLICY courses_tenant_isolation ON public.courses;
         CREATE POLICY courses_tenant_isolation ON public.courses USING (${using}) WITH CHECK (${using});`,
      );
      expect(codes, using).toContain(
        'POLICY_NOT_TENANT_SCOPED public.courses policy courses_tenant_isolation',
      );
    }
    // The exact tenantTable() expression, in both operand orders, passes.
    expect(
      await planted(
        `DROP POLICY courses_tenant_isolation ON public.courses;
         CREATE POLICY courses_tenant_isolation ON public.courses
           USING (nullif(current_setting('app.tenant_id', true), '') = tenant_id)
           WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), ''));`,
      ),
    ).toEqual([]);
  });

  it('reports views, materialized views and SECURITY DEFINER functions the app role can reach', async () => {
    const role = `"${environment.appRole}"`;
    const codes = await planted(
      `CREATE VIEW public.course_titles AS SELECT tenant_id, title FROM public.courses;
       GRANT SELECT ON public.course_titles TO ${role};
       CREATE SCHEMA reports;
       GRANT USAGE ON SCHEMA reports TO ${role};
       CREATE VIEW reports.via_public AS SELECT code FROM public.courses;
       GRANT SELECT ON reports.via_public TO PUBLIC;
       CREATE MATERIALIZED VIEW public.course_copy AS SELECT * FROM public.courses;
       GRANT SELECT ON public.course_copy TO ${role};
       CREATE FUNCTION public.all_courses() RETURNS SETOF public.courses
         LANGUAGE sql SECURITY DEFINER AS 'SELECT * FROM public.courses';
       CREATE VIEW public.safe_titles WITH (security_invoker = true) AS SELECT title FROM public.courses;
       GRANT SELECT ON public.safe_titles TO ${role};
       CREATE VIEW public.unreachable AS SELECT title FROM public.courses;
       REVOKE ALL ON public.unreachable FROM ${role};`,
    );
    expect(codes).toEqual(
      expect.arrayContaining([
        'VIEW_BYPASSES_RLS public.course_titles',
        'VIEW_BYPASSES_RLS reports.via_public',
        'MATERIALIZED_VIEW_READABLE public.course_copy',
        'SECURITY_DEFINER_FUNCTION all_courses()',
      ]),
    );
    expect(codes.filter((code) => /safe_titles|unreachable/.test(code))).toEqual([]);
  });

  it('reports membership in a role that bypasses RLS', async () => {
    const role = `"${environment.appRole}"`;
    const codes = await planted(
      `CREATE ROLE gate_bypass_parent NOLOGIN BYPASSRLS;
       CREATE ROLE gate_middle NOLOGIN;
       GRANT gate_bypass_parent TO gate_middle;
       GRANT gate_middle TO ${role};`,
    );
    expect(codes).toContain(`APP_ROLE_MEMBER_OF_BYPASS ${environment.appRole} -> gate_bypass_parent`);
  });

  describe('the isolation kit proves by behaviour that planted leaks leak', () => {
    const runKit = (prefix: string) =>
      testIsolationMode({
        tenantDb: environment.tenantDb,
        table: courses,
        row: (tenantId, index) => ({ title: `${tenantId} course ${index}`, code: `k${index}` }),
        update: { seats: 2 },
        tenants: 3,
        rounds: 1,
        rowsPerTenant: 2,
        tenantPrefix: prefix,
      });
    const role = () => `"${environment.appRole}"`;

    for (const [label, plant, drop] of [
      [
        'a view over a tenant table (no security_invoker)',
        'CREATE VIEW public.kit_titles AS SELECT title FROM public.courses; GRANT SELECT ON public.kit_titles TO {role}',
        'DROP VIEW public.kit_titles',
      ],
      [
        'a view in another schema exposing tenant_id',
        'CREATE SCHEMA kit_reports; GRANT USAGE ON SCHEMA kit_reports TO {role}; CREATE VIEW kit_reports.ids AS SELECT tenant_id, id FROM public.courses; GRANT SELECT ON kit_reports.ids TO {role}',
        'DROP SCHEMA kit_reports CASCADE',
      ],
      [
        'a SECURITY DEFINER function behind an invoker view',
        "CREATE FUNCTION public.kit_all() RETURNS SETOF public.courses LANGUAGE sql SECURITY DEFINER AS 'SELECT * FROM public.courses'; CREATE VIEW public.kit_via_fn WITH (security_invoker = true) AS SELECT * FROM public.kit_all(); GRANT SELECT ON public.kit_via_fn TO {role}",
        'DROP VIEW public.kit_via_fn; DROP FUNCTION public.kit_all()',
      ],
    ] as const) {
      it(`reports ${label}`, async () => {
        await admin.query(plant.replaceAll('{role}', role()));
        try {
          const report = await runKit(`kit${label.length}_`);
          expect(report.ok).toBe(false);
          expect(report.violations.map((violation) => violation.step)).toContain('relations');
          // Only the planted relation leaks: the tenant table itself is clean.
          expect(report.violations.filter((violation) => violation.step !== 'relations')).toEqual([]);
        } finally {
          await admin.query(drop);
        }
      });
    }

    it('a materialized view refreshed with rows of both tenants', async () => {
      await runKit('kitm_');
      await admin.query(
        `CREATE MATERIALIZED VIEW public.kit_copy AS SELECT * FROM public.courses; GRANT SELECT ON public.kit_copy TO ${role()}`,
      );
      try {
        const report = await runKit('kitm_');
        expect(report.violations.map((violation) => violation.step)).toContain('relations');
      } finally {
        await admin.query('DROP MATERIALIZED VIEW public.kit_copy');
      }
    });

    it('stays green without a planted leak', async () => {
      const report = await runKit('kitok_');
      expect(report.violations).toEqual([]);
      expect(report.checks).toBeGreaterThan(0);
    });
  });
});
