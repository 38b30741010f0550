import { MtPaasError } from '@mt-paas/context';

/** Postgres identifiers we create ourselves (schema, role, database names): lower-case, ≤ 63 bytes. */
const IDENTIFIER_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Checks a name we put into SQL as an identifier (schema prefix, catalog schema, role, database).
 *
 * @throws MtPaasError `CONFIG_INVALID` when the name is not a plain lower-case identifier.
 */
export function assertIdentifier(name: string, what: string): string {
  if (!IDENTIFIER_PATTERN.test(name)) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `Invalid ${what} ${JSON.stringify(name)}: use 1-63 characters of a-z, 0-9 and "_", starting with a letter or "_".`,
      { details: { what, name } },
    );
  }
  return name;
}

/** `"name"` — a double-quoted Postgres identifier (quotes inside doubled). */
export function quoteIdentifier(name: string): string {
  if (name.includes('\u0000'))
    throw new MtPaasError('INVALID_REQUEST', 'An SQL identifier cannot contain NUL.');
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * `'value'` — a standard-conforming SQL string literal. Only used for values that were validated
 * beforehand (tenant ids, identifiers), so the simple query protocol can carry them in one round trip.
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\u0000') || value.includes('\\')) {
    throw new MtPaasError(
      'INVALID_REQUEST',
      'A literal sent on the simple protocol cannot contain NUL or "\\".',
    );
  }
  return `'${value.replaceAll("'", "''")}'`;
}
