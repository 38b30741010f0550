import { roleFlags } from './app-role.js';
import type { SqlSession } from './driver.js';

/** What {@link checkCatalogGate} can find. */
export type GateFindingCode =
  | 'RLS_DISABLED'
  | 'RLS_NOT_FORCED'
  | 'PRIMARY_KEY_NOT_TENANT_LEADING'
  | 'UNIQUE_NOT_TENANT_LEADING'
  | 'POLICY_MISSING'
  | 'POLICY_NOT_TENANT_SCOPED'
  | 'POLICY_OR_BYPASS'
  | 'POLICY_VOLATILE_FUNCTION'
  | 'APP_ROLE_MISSING'
  | 'APP_ROLE_SUPERUSER'
  | 'APP_ROLE_BYPASSRLS'
  | 'APP_ROLE_OWNS_TABLE'
  | 'APP_ROLE_MEMBER_OF_BYPASS'
  | 'VIEW_BYPASSES_RLS'
  | 'MATERIALIZED_VIEW_READABLE'
  | 'SECURITY_DEFINER_FUNCTION';

/**
 * The only expressions a PERMISSIVE policy of a tenant table may have (as `pg_get_expr` prints them):
 * `tenant_id` equal to the tenant setting. Anything else — `<>`, `LIKE`, `>=`, an extra OR, a comparison
 * with another column — is reported, whatever text it contains. Extra conditions belong in RESTRICTIVE
 * policies, which can only narrow.
 */
const TENANT_SETTING_EXPRESSIONS = [
  "NULLIF(current_setting('app.tenant_id'::text, true), ''::text)",
  "current_setting('app.tenant_id'::text, true)",
  "current_setting('app.tenant_id'::text)",
];
const CANONICAL_POLICY_EXPRESSIONS = new Set(
  TENANT_SETTING_EXPRESSIONS.flatMap((setting) => [`(tenant_id = ${setting})`, `(${setting} = tenant_id)`]),
);

function isCanonicalTenantExpression(expression: string | null): boolean {
  return expression !== null && CANONICAL_POLICY_EXPRESSIONS.has(expression.replace(/\s+/g, ' ').trim());
}

/** One problem found by {@link checkCatalogGate}. */
export interface CatalogGateFinding {
  code: GateFindingCode;
  /** `schema.table`, the index or policy name, or the role. */
  object: string;
  message: string;
}

/** Options of {@link checkCatalogGate}. */
export interface CatalogGateOptions {
  /** The role the app connects as. */
  appRole: string;
  /**
   * Schemas whose tables with a `tenant_id` column are tenant tables.
   * @default every schema except pg_catalog, information_schema, pg_toast and the catalog schema `mt_paas`
   */
  schemas?: readonly string[];
  /** Schemas never checked. @default ['mt_paas'] */
  excludeSchemas?: readonly string[];
}

interface TableRow {
  oid: number;
  name: string;
  rls: boolean;
  forced: boolean;
  owner: string;
  owned_by_app: boolean;
}

/**
 * The database-side gate: reads the system catalogs (run it as any role that can see them, e.g. the
 * migration owner) and returns every finding. A clean database returns `[]`.
 *
 * Checks: every tenant table has `relrowsecurity` and `relforcerowsecurity`; its primary key and every
 * unique index lead with `tenant_id`; it has a policy that compares `tenant_id` with
 * `current_setting('app.tenant_id', …)`, with no `OR` and no VOLATILE function, and no second permissive
 * policy that could widen it; the app role exists, is neither SUPERUSER nor BYPASSRLS and owns (or is a
 * member of the owner of) no tenant table.
 */
export async function checkCatalogGate(
  session: Pick<SqlSession, 'query'>,
  options: CatalogGateOptions,
): Promise<CatalogGateFinding[]> {
  const findings: CatalogGateFinding[] = [];
  const exclude = [
    ...(options.excludeSchemas ?? ['mt_paas']),
    'pg_catalog',
    'information_schema',
    'pg_toast',
  ];
  const flags = await roleFlags(session, options.appRole);
  if (flags === undefined) {
    findings.push({
      code: 'APP_ROLE_MISSING',
      object: options.appRole,
      message: `Role "${options.appRole}" does not exist: create it with ensureAppRole().`,
    });
  } else {
    if (flags.superuser) {
      findings.push({
        code: 'APP_ROLE_SUPERUSER',
        object: options.appRole,
        message: `The app role is a superuser, so RLS never applies to it: ALTER ROLE "${options.appRole}" NOSUPERUSER (ensureAppRole() repairs it).`,
      });
    }
    if (flags.bypassRls) {
      findings.push({
        code: 'APP_ROLE_BYPASSRLS',
        object: options.appRole,
        message: `The app role has BYPASSRLS, so RLS never applies to it: ALTER ROLE "${options.appRole}" NOBYPASSRLS (ensureAppRole() repairs it).`,
      });
    }
    for (const role of flags.bypassMemberships) {
      findings.push({
        code: 'APP_ROLE_MEMBER_OF_BYPASS',
        object: `${options.appRole} -> ${role}`,
        message: `The app role is a member of "${role}", which is SUPERUSER or BYPASSRLS: one SET ROLE and RLS no longer applies: remove the membership (REVOKE "${role}" FROM "${options.appRole}").`,
      });
    }
  }

  findings.push(...(await reachableBypasses(session, options.appRole, exclude)));

  const tables = await session.query<TableRow>(
    `SELECT c.oid::int AS oid, format('%I.%I', n.nspname, c.relname) AS name, c.relrowsecurity AS rls,
            c.relforcerowsecurity AS forced, pg_get_userbyid(c.relowner) AS owner,
            (r.oid IS NOT NULL AND (c.relowner = r.oid OR pg_has_role(r.oid, c.relowner, 'MEMBER'))) AS owned_by_app
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped AND a.attnum > 0
       LEFT JOIN pg_roles r ON r.rolname = $1
      WHERE c.relkind IN ('r', 'p')
        AND NOT (n.nspname = ANY($2::text[]))
        AND ($3::text[] IS NULL OR n.nspname = ANY($3::text[]))
        AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast%'
      ORDER BY 2`,
    [options.appRole, exclude, options.schemas === undefined ? null : [...options.schemas]],
  );
  if (tables.rows.length === 0) return findings;
  const oids = tables.rows.map((table) => table.oid);

  const indexes = await session.query<{
    table_oid: number;
    name: string;
    primary: boolean;
    first_column: string | null;
  }>(
    `SELECT i.indrelid::int AS table_oid, ic.relname AS name, i.indisprimary AS primary,
            (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = i.indkey[0]) AS first_column
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
      WHERE i.indrelid = ANY($1::oid[]) AND (i.indisunique OR i.indisprimary)`,
    [oids],
  );
  const policies = await session.query<{
    table_oid: number;
    name: string;
    permissive: boolean;
    command: string;
    using: string | null;
    check: string | null;
    volatile_functions: string[] | null;
  }>(
    `SELECT p.polrelid::int AS table_oid, p.polname AS name, p.polpermissive AS permissive, p.polcmd::text AS command,
            pg_get_expr(p.polqual, p.polrelid) AS using, pg_get_expr(p.polwithcheck, p.polrelid) AS check,
            (SELECT array_agg(DISTINCT pr.proname) FROM pg_depend d JOIN pg_proc pr ON pr.oid = d.refobjid
              WHERE d.classid = 'pg_policy'::regclass AND d.objid = p.oid AND d.refclassid = 'pg_proc'::regclass
                AND pr.provolatile = 'v') AS volatile_functions
       FROM pg_policy p WHERE p.polrelid = ANY($1::oid[])`,
    [oids],
  );

  // Built-in functions are pinned (no pg_depend rows): also look up every function name the expressions call.
  const called = new Set<string>();
  for (const policy of policies.rows) {
    for (const expression of [policy.using, policy.check]) {
      for (const match of (expression ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_$]*)\s*\(/g)) {
        called.add(match[1]!.toLowerCase());
      }
    }
  }
  const volatileByName = new Set(
    called.size === 0
      ? []
      : (
          await session.query<{ proname: string }>(
            "SELECT DISTINCT proname FROM pg_proc WHERE proname = ANY($1::text[]) AND provolatile = 'v'",
            [[...called]],
          )
        ).rows.map((row) => row.proname),
  );
  const volatileIn = (expression: string | null) =>
    [...(expression ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_$]*)\s*\(/g)]
      .map((match) => match[1]!.toLowerCase())
      .filter((name) => volatileByName.has(name));

  for (const table of tables.rows) {
    if (!table.rls) {
      findings.push({
        code: 'RLS_DISABLED',
        object: table.name,
        message:
          'Row-level security is not enabled: declare the table with tenantTable() and apply its migrations with migrateTenants().',
      });
    }
    if (!table.forced) {
      findings.push({
        code: 'RLS_NOT_FORCED',
        object: table.name,
        message:
          'Row-level security is not FORCEd, so the table owner bypasses it: run migrateTenants() (it FORCEs every RLS table) or ALTER TABLE … FORCE ROW LEVEL SECURITY.',
      });
    }
    if (table.owned_by_app) {
      findings.push({
        code: 'APP_ROLE_OWNS_TABLE',
        object: table.name,
        message: `The app role "${options.appRole}" owns this table (owner "${table.owner}"): run migrations as another role.`,
      });
    }
    for (const index of indexes.rows.filter((row) => row.table_oid === table.oid)) {
      if (index.first_column !== 'tenant_id') {
        findings.push({
          code: index.primary ? 'PRIMARY_KEY_NOT_TENANT_LEADING' : 'UNIQUE_NOT_TENANT_LEADING',
          object: `${table.name} (${index.name})`,
          message: `${index.primary ? 'The primary key' : 'A unique index'} starts with "${index.first_column ?? 'an expression'}" instead of tenant_id: declare it in tenantTable(), which leads every primary key and unique index with tenant_id.`,
        });
      }
    }
    const own = policies.rows.filter((row) => row.table_oid === table.oid);
    const scoped = isCanonicalTenantExpression;
    if (own.length === 0) {
      findings.push({
        code: 'POLICY_MISSING',
        object: table.name,
        message:
          'The table has no row-level security policy: declare it with tenantTable(), which adds the tenant isolation policy.',
      });
    }
    const permissive = own.filter((policy) => policy.permissive);
    for (const policy of own) {
      const label = `${table.name} policy ${policy.name}`;
      const expressions = [policy.using, policy.check].filter((value): value is string => value !== null);
      if (policy.permissive && !(scoped(policy.using) || (policy.command === 'a' && scoped(policy.check)))) {
        findings.push({
          code: 'POLICY_NOT_TENANT_SCOPED',
          object: label,
          message: `The policy is not exactly "tenant_id = nullif(current_setting('app.tenant_id', true), '')" (it is ${JSON.stringify(policy.using ?? policy.check)}): declare the table with tenantTable(), drop this policy, or make it RESTRICTIVE.`,
        });
      }
      if (policy.check !== null && policy.permissive && !scoped(policy.check)) {
        findings.push({
          code: 'POLICY_NOT_TENANT_SCOPED',
          object: label,
          message: `WITH CHECK is not exactly "tenant_id = nullif(current_setting('app.tenant_id', true), '')" (it is ${JSON.stringify(policy.check)}): writes could carry another tenant's id; fix or drop the policy.`,
        });
      }
      if (expressions.some((expression) => /\bOR\b/i.test(expression))) {
        findings.push({
          code: 'POLICY_OR_BYPASS',
          object: label,
          message:
            'The policy has an OR that can widen it: remove the OR branch (use a separate RESTRICTIVE policy for extra conditions).',
        });
      }
      const volatile = new Set([
        ...(policy.volatile_functions ?? []),
        ...volatileIn(policy.using),
        ...volatileIn(policy.check),
      ]);
      if (volatile.size > 0) {
        findings.push({
          code: 'POLICY_VOLATILE_FUNCTION',
          object: label,
          message: `The policy calls VOLATILE function(s) ${[...volatile].join(', ')}: use only STABLE or IMMUTABLE functions such as current_setting().`,
        });
      }
    }
    if (permissive.length > 1) {
      findings.push({
        code: 'POLICY_OR_BYPASS',
        object: table.name,
        message: `Permissive policies are OR-ed: ${permissive.map((policy) => policy.name).join(', ')} together may widen access: keep one permissive tenant policy and make the others RESTRICTIVE.`,
      });
    }
  }
  return findings;
}

/**
 * Views, materialized views and SECURITY DEFINER functions the app role can use: they run with their
 * owner's rights (a view without `security_invoker`, a definer function) or hold a copy of the rows (a
 * materialized view, which cannot have RLS), so row-level security does not filter what they return.
 */
async function reachableBypasses(
  session: Pick<SqlSession, 'query'>,
  appRole: string,
  exclude: readonly string[],
): Promise<CatalogGateFinding[]> {
  const findings: CatalogGateFinding[] = [];
  const relations = await session.query<{ name: string; kind: string; invoker: boolean }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name, c.relkind::text AS kind,
            coalesce(c.reloptions::text[] && ARRAY['security_invoker=true', 'security_invoker=on', 'security_invoker=1'], false) AS invoker
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_roles r ON r.rolname = $1
      WHERE c.relkind IN ('v', 'm')
        AND NOT (n.nspname = ANY($2::text[])) AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast%'
        AND has_table_privilege(r.oid, c.oid, 'SELECT, INSERT, UPDATE, DELETE')
      ORDER BY 1`,
    [appRole, exclude],
  );
  for (const relation of relations.rows) {
    if (relation.kind === 'm') {
      findings.push({
        code: 'MATERIALIZED_VIEW_READABLE',
        object: relation.name,
        message: `The app role can read this materialized view, which stores rows without row-level security: REVOKE ALL ON ${relation.name} FROM the app role (and PUBLIC), or drop it.`,
      });
    } else if (!relation.invoker) {
      findings.push({
        code: 'VIEW_BYPASSES_RLS',
        object: relation.name,
        message: `The app role can use this view, which reads its tables with its owner's rights (no security_invoker), so their RLS is not applied as the app: ALTER VIEW ${relation.name} SET (security_invoker = true), or REVOKE it from the app role.`,
      });
    }
  }
  const functions = await session.query<{ name: string }>(
    `SELECT p.oid::regprocedure::text AS name
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       JOIN pg_roles r ON r.rolname = $1
      WHERE p.prosecdef AND NOT (n.nspname = ANY($2::text[])) AND n.nspname NOT LIKE 'pg_temp%'
        AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
      ORDER BY 1`,
    [appRole, exclude],
  );
  for (const fn of functions.rows) {
    findings.push({
      code: 'SECURITY_DEFINER_FUNCTION',
      object: fn.name,
      message: `The app role can EXECUTE this SECURITY DEFINER function, which runs with its owner's rights (row-level security as the owner, or none): ALTER FUNCTION ${fn.name} SECURITY INVOKER, or REVOKE EXECUTE ON FUNCTION ${fn.name} FROM PUBLIC and the app role.`,
    });
  }
  return findings;
}
