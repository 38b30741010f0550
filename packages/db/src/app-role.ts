import { createHash, createHmac } from 'node:crypto';
import { MtPaasError } from '@mt-paas/context';
import type { SqlDriver, SqlSession } from './driver.js';
import { LEDGER_TABLE } from './migrator.js';
import { assertIdentifier, quoteIdentifier, quoteLiteral } from './sql-text.js';

/** The app role used when none is configured (PGlite, or `ensureAppRole()` without a name). */
export const DEFAULT_APP_ROLE = 'mt_paas_app';

/** Options of {@link ensureAppRole}. */
export interface EnsureAppRoleOptions {
  /** Role name. @default 'mt_paas_app' */
  role?: string;
  /** Login password; without one the role is `NOLOGIN` (fine for PGlite's `SET LOCAL ROLE`). */
  password?: string;
  /** Schemas whose tables the role may read and write (grants now and for tables created later). @default ['public'] */
  schemas?: readonly string[];
}

/**
 * Creates (or repairs) the role the app connects as: `NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE`,
 * owning nothing, with `CONNECT` on the database, `USAGE` on the schemas and DML on their tables and
 * sequences. Run it with the owner / admin connection (the one migrations use). Idempotent and safe
 * to run concurrently.
 *
 * @returns the role name.
 */
export async function ensureAppRole(admin: SqlDriver, options: EnsureAppRoleOptions = {}): Promise<string> {
  const role = assertIdentifier(options.role ?? DEFAULT_APP_ROLE, 'app role');
  const login =
    options.password === undefined ? 'NOLOGIN' : `LOGIN PASSWORD ${quoteLiteral(options.password)}`;
  const attributes = 'NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION';
  await admin.exec(
    `DO $mt_paas$ BEGIN
       IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${quoteLiteral(role)}) THEN
         BEGIN
           CREATE ROLE ${quoteIdentifier(role)} ${login} ${attributes};
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
         END;
       END IF;
     END $mt_paas$;
     ALTER ROLE ${quoteIdentifier(role)} ${options.password === undefined ? '' : login} ${attributes};`,
  );
  const { rows } = await admin.query<{ database: string }>('SELECT current_database() AS database');
  await admin.exec(
    `GRANT CONNECT ON DATABASE ${quoteIdentifier(rows[0]!.database)} TO ${quoteIdentifier(role)}`,
  );
  for (const schema of options.schemas ?? ['public']) {
    await admin.transaction((session) => grantSchema(session, assertIdentifier(schema, 'schema'), role));
  }
  return role;
}

/**
 * The role units of work connect as on a tenant's own server (a placement URL, e.g. docker mode's
 * container database). Docker placement's `database.appUser` defaults to the same name.
 */
export const DEFAULT_PLACEMENT_APP_ROLE = 'app';

/** How the placement app role's password is derived ({@link placementAppPassword}). */
export interface PlacementCredentialsOptions {
  /**
   * A secret of the control plane: the password is then derived per placement server (`host:port` of the
   * placement URL) and role, the same for every tenant on that server whatever its owner credentials.
   * @default derived from the owner password of the placement URL
   */
  secret?: string;
}

/**
 * The app role's password on a placement server, base64url (43 characters). With `options.secret`:
 * HMAC-SHA256 keyed by the secret over the server (`host:port`, lower-cased) and the role — one password
 * per server and role, shared by every tenant placed there. Without: keyed by the owner password of
 * `ownerUrl` over the role name — whoever holds the placement URL (the control plane) can derive it, but
 * tenants on one server with different owner passwords derive different ones (`ensureLoginRole` refuses
 * the second instead of rotating the shared role's password).
 * `undefined` when no secret is given and the owner URL carries no password (the server then
 * authenticates the app role the way it authenticates the owner, e.g. `trust` or a client certificate).
 */
export function placementAppPassword(
  ownerUrl: string,
  role: string = DEFAULT_PLACEMENT_APP_ROLE,
  options: PlacementCredentialsOptions = {},
): string | undefined {
  let url: URL;
  try {
    url = new URL(ownerUrl);
  } catch {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'The placement URL is not a valid URL (postgresql://owner:password@host:5432/database).',
    );
  }
  if (options.secret !== undefined) {
    if (options.secret.length < 16) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        'database.placementSecret must be at least 16 characters (e.g. `openssl rand -base64 32`).',
      );
    }
    const server = `${url.hostname.toLowerCase()}:${url.port === '' ? '5432' : url.port}`;
    return createHmac('sha256', options.secret)
      .update(`mt-paas placement app role:${server}:${role}`)
      .digest('base64url');
  }
  const password = decodeURIComponent(url.password);
  if (password === '') return undefined;
  return createHmac('sha256', password).update(`mt-paas placement app role:${role}`).digest('base64url');
}

/**
 * The URL units of work use for a tenant placed by URL: `ownerUrl` (the placement location: the owner,
 * which creates, migrates and drops the database) with the app role and its derived password
 * ({@link placementAppPassword}) as credentials.
 *
 * @throws MtPaasError `CONFIG_INVALID` when the placement URL's user is the app role itself (the owner
 * of the tenant tables could turn their row-level security off).
 */
export function placementAppUrl(
  ownerUrl: string,
  role: string = DEFAULT_PLACEMENT_APP_ROLE,
  options: PlacementCredentialsOptions = {},
): string {
  const appRole = assertIdentifier(role, 'placement app role');
  const password = placementAppPassword(ownerUrl, appRole, options);
  const url = new URL(ownerUrl);
  if (decodeURIComponent(url.username) === appRole) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `The placement URL connects as "${appRole}", the role units of work use: the owner of the tenant tables must be another role (it runs migrations and could turn row-level security off). Put the owner in the placement URL, or set database.placementAppRole to another role.`,
    );
  }
  url.username = encodeURIComponent(appRole);
  url.password = password === undefined ? '' : encodeURIComponent(password);
  return url.toString();
}

/**
 * What a placement app role carries as its comment: a fingerprint (SHA-256) of the password it was
 * created with, so a later tenant whose derivation differs is detected without trying to log in.
 * The password itself is a 256-bit HMAC output: its fingerprint reveals nothing usable.
 */
export function placementPasswordFingerprint(password: string): string {
  return `mt-paas placement app password sha256:${createHash('sha256').update(`mt-paas fingerprint:${password}`).digest('hex')}`;
}

/**
 * Creates `role` as `LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION` when it does not
 * exist yet (with `password`, or none, and the password's fingerprint as the role's comment), then grants
 * it CONNECT on the current database. An existing role keeps its password — never rotated, since other
 * tenants on the same server connect with it: when its comment carries another password's fingerprint
 * the call is refused (`CONFLICT`); a role without one (docker mode's init script of an older version, or
 * made by hand) gets this one's when the owner may comment on it. Its flags are checked by the first unit
 * of work ({@link refuseBypass}). Run as the owner of the tenant's server.
 */
export async function ensureLoginRole(
  admin: SqlDriver,
  role: string,
  password: string | undefined,
): Promise<void> {
  const name = assertIdentifier(role, 'placement app role');
  const credentials = password === undefined ? 'LOGIN' : `LOGIN PASSWORD ${quoteLiteral(password)}`;
  const fingerprint = password === undefined ? undefined : placementPasswordFingerprint(password);
  try {
    await admin.exec(
      `DO $mt_paas$ BEGIN
         IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${quoteLiteral(name)}) THEN
           BEGIN
             CREATE ROLE ${quoteIdentifier(name)} ${credentials} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;${
               fingerprint === undefined
                 ? ''
                 : `
             COMMENT ON ROLE ${quoteIdentifier(name)} IS ${quoteLiteral(fingerprint)};`
             }
           EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
           END;
         END IF;
       END $mt_paas$;`,
    );
  } catch (error) {
    if ((error as { code?: string }).code !== '42501') throw error;
    throw new MtPaasError(
      'CONFIG_INVALID',
      `The owner of the tenant's server may not create the app role "${name}": create it there first (LOGIN NOSUPERUSER NOBYPASSRLS, password from placementAppPassword(); docker mode's initdb.sql does) or give the owner CREATEROLE.`,
      { cause: error },
    );
  }
  if (fingerprint !== undefined) {
    const { rows: described } = await admin.query<{ comment: string | null }>(
      `SELECT shobj_description(oid, 'pg_authid') AS comment FROM pg_roles WHERE rolname = $1`,
      [name],
    );
    const comment = described[0]?.comment ?? null;
    if (comment?.startsWith('mt-paas placement app password') && comment !== fingerprint) {
      throw new MtPaasError(
        'CONFLICT',
        `The app role "${name}" on this tenant's server already has a password derived from another owner credential (another tenant placed on the same server): its password is not rotated, since that tenant connects with it. Set database.placementSecret (the same in the tenant db and the docker placement) so every tenant on a server derives one app password, or place tenants that share a server with the same owner credentials.`,
        { details: { role: name } },
      );
    }
    if (comment === null) {
      // First claim of a role made elsewhere; an owner that may not comment on it leaves it unclaimed.
      await admin
        .exec(`COMMENT ON ROLE ${quoteIdentifier(name)} IS ${quoteLiteral(fingerprint)}`)
        .catch(() => {});
    }
  }
  const { rows } = await admin.query<{ database: string }>('SELECT current_database() AS database');
  await admin.exec(
    `GRANT CONNECT ON DATABASE ${quoteIdentifier(rows[0]!.database)} TO ${quoteIdentifier(name)}`,
  );
}

/** Grants `role` USAGE on `schema` and DML on its tables/sequences (not the migration ledger). */
export async function grantSchema(session: SqlSession, schema: string, role: string): Promise<void> {
  const s = quoteIdentifier(schema);
  const r = quoteIdentifier(role);
  await session.exec(
    `CREATE SCHEMA IF NOT EXISTS ${s};
     GRANT USAGE ON SCHEMA ${s} TO ${r};
     GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${s} TO ${r};
     GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${s} TO ${r};
     ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${r};
     ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT USAGE, SELECT ON SEQUENCES TO ${r};
     DO $mt_paas$ BEGIN
       IF to_regclass(${quoteLiteral(`${s}.${quoteIdentifier(LEDGER_TABLE)}`)}) IS NOT NULL THEN
         EXECUTE ${quoteLiteral(`REVOKE ALL ON ${s}.${quoteIdentifier(LEDGER_TABLE)} FROM ${r}`)};
       END IF;
     END $mt_paas$;`,
  );
}

/** Name of the RESTRICTIVE policy that pins the tables of a tenant's own schema / database to that tenant. */
export const TENANT_PIN_POLICY = 'mt_paas_tenant_pin';

/**
 * Hardens the tenant tables of `schema` after migrations: `FORCE ROW LEVEL SECURITY` on every table
 * with row security enabled, then the app role's grants. With `pinTenant` (schema and database modes,
 * where the schema belongs to one tenant) every RLS table with a `tenant_id` column also gets the
 * RESTRICTIVE policy {@link TENANT_PIN_POLICY}: its rows are only readable and writable by a unit of
 * that tenant. Another tenant's unit that names the table with a qualified name (`"t_b".notes`) fails
 * (its writes violate the policy; reading a row raises `mt_paas_tenant_pin`), so schema mode no longer
 * relies on `search_path` alone.
 */
export async function hardenSchema(
  session: SqlSession,
  schema: string,
  role: string | undefined,
  pinTenant?: string,
): Promise<void> {
  const pin =
    pinTenant === undefined
      ? ''
      : `
         IF EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attname = 'tenant_id'
                     AND a.attnum > 0 AND NOT a.attisdropped) THEN
           EXECUTE format('DROP POLICY IF EXISTS ${TENANT_PIN_POLICY} ON %s', t.name);
           EXECUTE format(
             'CREATE POLICY ${TENANT_PIN_POLICY} ON %s AS RESTRICTIVE FOR ALL TO PUBLIC '
             'USING (tenant_id = (SELECT CASE WHEN current_setting(''app.tenant_id'', true) = %L THEN %L '
             'ELSE (%L || coalesce(current_setting(''app.tenant_id'', true), ''(none)''))::boolean::text END)) '
             'WITH CHECK (tenant_id = %L)',
             t.name, ${quoteLiteral(pinTenant)}, ${quoteLiteral(pinTenant)}, ${quoteLiteral(`mt_paas_tenant_pin: a table of tenant ${pinTenant} was used by a unit of tenant `)}, ${quoteLiteral(pinTenant)});
         END IF;`;
  await session.exec(
    `DO $mt_paas$ DECLARE t record; BEGIN
       FOR t IN SELECT c.oid, c.oid::regclass AS name, c.relforcerowsecurity AS forced
                  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = ${quoteLiteral(schema)} AND c.relkind IN ('r', 'p') AND c.relrowsecurity LOOP
         IF NOT t.forced THEN
           EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t.name);
         END IF;${pin}
       END LOOP;
     END $mt_paas$;`,
  );
  if (role !== undefined) await grantSchema(session, schema, role);
}

/** Role attributes that matter for isolation. */
export interface RoleFlags {
  name: string;
  superuser: boolean;
  bypassRls: boolean;
  /** Roles the role is a member of (directly or not) that are SUPERUSER or BYPASSRLS: `SET ROLE` reaches them. */
  bypassMemberships: string[];
}

/** The flags of `role` (or of `current_user`). */
export async function roleFlags(
  session: Pick<SqlSession, 'query'>,
  role?: string,
): Promise<RoleFlags | undefined> {
  const { rows } = await session.query<{
    rolname: string;
    rolsuper: boolean;
    rolbypassrls: boolean;
    bypass_memberships: string[] | null;
  }>(
    `SELECT r.rolname, r.rolsuper, r.rolbypassrls,
            ARRAY(SELECT b.rolname::text FROM pg_roles b
                   WHERE NOT r.rolsuper AND (b.rolsuper OR b.rolbypassrls) AND b.oid <> r.oid
                     AND pg_has_role(r.oid, b.oid, 'MEMBER')
                   ORDER BY 1) AS bypass_memberships
       FROM pg_roles r WHERE r.rolname = ${role === undefined ? 'current_user' : '$1'}`,
    role === undefined ? [] : [role],
  );
  const row = rows[0];
  return row === undefined
    ? undefined
    : {
        name: row.rolname,
        superuser: row.rolsuper,
        bypassRls: row.rolbypassrls,
        bypassMemberships: row.bypass_memberships ?? [],
      };
}

/**
 * @throws MtPaasError `CONFIG_INVALID` when `flags` would let the app bypass row-level security: a
 * SUPERUSER or BYPASSRLS role, or a member of one (it could `SET ROLE` to it). Checked in every mode.
 */
export function refuseBypass(flags: RoleFlags | undefined, roleName: string, mode: string): void {
  if (flags === undefined) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `The app role "${roleName}" does not exist; create it with ensureAppRole().`,
    );
  }
  const what = flags.superuser
    ? 'a SUPERUSER'
    : flags.bypassRls
      ? 'BYPASSRLS'
      : flags.bypassMemberships.length > 0
        ? `a member of ${flags.bypassMemberships.map((name) => `"${name}"`).join(', ')} (SUPERUSER or BYPASSRLS, reachable with SET ROLE)`
        : undefined;
  if (what !== undefined) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `The ${mode} mode refuses to run: the app connects as "${flags.name}", which is ${what} and would see every tenant's rows. Connect as a NOSUPERUSER NOBYPASSRLS role that owns no tenant table and is a member of no such role (ensureAppRole() creates one); run migrations with the owner.`,
      {
        details: {
          role: flags.name,
          superuser: flags.superuser,
          bypassRls: flags.bypassRls,
          bypassMemberships: flags.bypassMemberships,
        },
      },
    );
  }
}
