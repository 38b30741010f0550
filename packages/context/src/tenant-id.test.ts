import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MtPaasError } from './errors.js';
import { isTenantId, parseTenantId, TENANT_ID_PATTERN, tenantIdProblem } from './tenant-id.js';

/** How Postgres quotes an identifier: wrap in double quotes, double any inner quote. */
function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

const validId = fc
  .tuple(
    fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'),
    fc.string({
      unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789_'),
      minLength: 1,
      maxLength: 47,
    }),
  )
  .map(([head, tail]) => head + tail);

describe('tenant id grammar', () => {
  it.each(['univ_8', 'demo_7', 'hallym_univ', 'e2e_test', 'hltutor', 'ab', 'a'.repeat(48)])(
    'accepts %s',
    (id) => {
      expect(parseTenantId(id)).toBe(id);
      expect(isTenantId(id)).toBe(true);
    },
  );

  it.each([
    ['', 'empty'],
    ['a', 'at least 2'],
    ['a'.repeat(49), 'at most 48'],
    ['Univ_8', 'lower-case'],
    ['8univ', 'start with a lower-case letter'],
    ['_univ', 'start with a lower-case letter'],
    ['univ-8', 'only lower-case'],
    ['univ 8', 'only lower-case'],
    [' univ', 'start with'],
    ['univ\n', 'only lower-case'],
    ['univ;drop', 'only lower-case'],
    ["x'; DROP TABLE tenants; --", 'only lower-case'],
    ['x"y', 'only lower-case'],
    ['../etc', 'start with'],
    ['a:b', 'only lower-case'],
    ['a{b}', 'only lower-case'],
    ['unіv', 'only lower-case'], // Cyrillic і, a look-alike
    ['ｕｎｉｖ', 'start with'], // full-width letters
    ['public', 'reserved'],
    ['information_schema', 'reserved'],
    ['pg_catalog', 'reserved'],
    ['pg_anything', 'reserved'],
    ['mt_paas', 'reserved'],
    ['mt_paas_x', 'reserved'],
  ])('refuses %j (%s)', (id, why) => {
    expect(isTenantId(id)).toBe(false);
    expect(tenantIdProblem(id)).toContain(why);
    try {
      parseTenantId(id);
      expect.unreachable('parseTenantId should throw');
    } catch (error) {
      expect(MtPaasError.isInstance(error)).toBe(true);
      expect((error as MtPaasError).code).toBe('INVALID_TENANT_ID');
      expect((error as MtPaasError).httpStatus).toBe(400);
      expect((error as MtPaasError).message).toMatch(/2-48 characters/);
    }
  });

  it.each([null, undefined, 42, {}, ['univ_8']])('refuses non-strings (%j)', (value) => {
    expect(isTenantId(value)).toBe(false);
    expect(() => parseTenantId(value)).toThrow(MtPaasError);
  });

  it('accepts exactly the pattern, minus reserved names (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (input) => {
        if (isTenantId(input)) expect(TENANT_ID_PATTERN.test(input)).toBe(true);
        if (!TENANT_ID_PATTERN.test(input)) expect(isTenantId(input)).toBe(false);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(validId, (id) => {
        expect(TENANT_ID_PATTERN.test(id)).toBe(true);
      }),
    );
  });

  it('no accepted id can escape a quoted SQL identifier, a SQL literal or a key prefix (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(validId, fc.string({ maxLength: 60 }), fc.string({ unit: 'grapheme', maxLength: 20 })),
        (input) => {
          if (!isTenantId(input)) return;
          // quoting changes nothing, so the quoted form is exactly one identifier
          expect(quoteIdent(input)).toBe(`"${input}"`);
          expect(input).not.toMatch(/["'\\;\s]/);
          expect(input.includes(String.fromCharCode(0))).toBe(false);
          // a prefixed schema / database / role name stays inside Postgres's 63-byte limit
          expect(Buffer.byteLength(`mt_paas_tenant_${input}`)).toBeLessThanOrEqual(63);
          // Redis key parts: no separator or hash-tag characters, so `{id}:x` cannot be forged
          expect(input).not.toMatch(/[:{}*?[\]]/);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('two different accepted ids never produce the same hash-tagged key prefix (property)', () => {
    fc.assert(
      fc.property(validId, validId, fc.string({ maxLength: 10 }), (a, b, suffix) => {
        fc.pre(a !== b && isTenantId(a) && isTenantId(b));
        expect(`mtp:{${a}}:${suffix}`).not.toBe(`mtp:{${b}}:${suffix}`);
        expect(`mtp:{${a}}:`.startsWith(`mtp:{${b}}:`)).toBe(false);
      }),
    );
  });
});
