import { MtPaasError } from './errors.js';

declare const tenantIdBrand: unique symbol;

/**
 * A tenant id that passed the grammar: `^[a-z][a-z0-9_]{1,47}$`, not a reserved name.
 * Only {@link parseTenantId} (or {@link isTenantId} as a guard) produces one, so a `TenantId`
 * can go into a quoted SQL identifier, a schema/database/role name (with a prefix of up to
 * 15 bytes it stays inside Postgres's 63-byte limit) or a Redis key without further escaping.
 */
export type TenantId = string & { readonly [tenantIdBrand]: true };

/** The tenant id grammar. Lower-case ASCII letter first, then letters, digits or `_`; 2 to 48 characters. */
export const TENANT_ID_PATTERN = /^[a-z][a-z0-9_]{1,47}$/;

/** Longest accepted tenant id. */
export const TENANT_ID_MAX_LENGTH = 48;

/** Names that are valid by grammar but refused because Postgres, Redis or mt-paas itself uses them. */
export const RESERVED_TENANT_IDS: ReadonlySet<string> = new Set([
  'public',
  'information_schema',
  'mt_paas',
  'mt_paas_catalog',
  'catalog',
  'postgres',
  'template0',
  'template1',
  'admin',
  'root',
  'system',
  'default',
  'null',
  'undefined',
  'none',
  'all',
  'any',
  'user',
  'current_user',
  'session_user',
]);

/** Prefixes refused because Postgres reserves them (`pg_`) or mt-paas names its own objects with them. */
export const RESERVED_TENANT_ID_PREFIXES: readonly string[] = ['pg_', 'mt_paas_'];

/** Why an input is not a tenant id, or `undefined` when it is one. */
export function tenantIdProblem(input: unknown): string | undefined {
  if (typeof input !== 'string') return `expected a string, got ${input === null ? 'null' : typeof input}`;
  if (input.length === 0) return 'it is empty';
  if (input.length > TENANT_ID_MAX_LENGTH) {
    return `it has ${input.length} characters; at most ${TENANT_ID_MAX_LENGTH} are allowed`;
  }
  if (input.length < 2) return 'it must have at least 2 characters';
  if (!TENANT_ID_PATTERN.test(input)) {
    if (/[A-Z]/.test(input) && TENANT_ID_PATTERN.test(input.toLowerCase())) {
      return 'it contains upper-case letters; tenant ids are lower-case';
    }
    if (!/^[a-z]/.test(input)) return 'it must start with a lower-case letter a-z';
    return 'only lower-case letters a-z, digits 0-9 and "_" are allowed';
  }
  if (RESERVED_TENANT_IDS.has(input)) return `"${input}" is a reserved name`;
  for (const prefix of RESERVED_TENANT_ID_PREFIXES) {
    if (input.startsWith(prefix)) return `the prefix "${prefix}" is reserved`;
  }
  return undefined;
}

/** True when `input` is a valid, non-reserved tenant id. */
export function isTenantId(input: unknown): input is TenantId {
  return tenantIdProblem(input) === undefined;
}

/**
 * Checks `input` against the tenant id grammar and returns it branded.
 *
 * @throws MtPaasError `INVALID_TENANT_ID` (400) saying why, with the rule in `details`.
 */
export function parseTenantId(input: unknown): TenantId {
  const problem = tenantIdProblem(input);
  if (problem !== undefined) {
    const shown = typeof input === 'string' ? JSON.stringify(input.slice(0, 64)) : String(input);
    throw new MtPaasError(
      'INVALID_TENANT_ID',
      `Invalid tenant id ${shown}: ${problem}. A tenant id is 2-48 characters of a-z, 0-9 and "_", starting with a letter (e.g. "univ_8").`,
      { details: { reason: problem, pattern: TENANT_ID_PATTERN.source } },
    );
  }
  return input as TenantId;
}
