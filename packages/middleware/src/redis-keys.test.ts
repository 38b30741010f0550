import { isTenantId, parseTenantId } from '@mt-paas/context';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hashTagOf, safeKeyPart, tenantKey } from './redis-keys.js';

const tenantIdArbitrary = fc.stringMatching(/^[a-z][a-z0-9_]{1,47}$/).filter((value) => isTenantId(value));

describe('tenantKey', () => {
  it('hash-tags every key with exactly the tenant id', () => {
    fc.assert(
      fc.property(tenantIdArbitrary, fc.array(fc.string(), { maxLength: 3 }), (tenantId, parts) => {
        const key = tenantKey('mtpaas', tenantId, 'rl', ...parts);
        expect(hashTagOf(key)).toBe(tenantId);
      }),
    );
  });

  it('never gives two tenants the same key, whatever the other parts are', () => {
    fc.assert(
      fc.property(tenantIdArbitrary, tenantIdArbitrary, fc.string(), fc.string(), (a, b, partA, partB) => {
        fc.pre(a !== b);
        expect(tenantKey('mtpaas', a, 'q', partA)).not.toBe(tenantKey('mtpaas', b, 'q', partB));
      }),
    );
  });

  it('refuses any id containing ":", "{" or "}" (the grammar forbids them), so tags cannot be forged', () => {
    fc.assert(
      fc.property(fc.string(), fc.constantFrom(':', '{', '}'), fc.string(), (before, special, after) => {
        const candidate = `${before}${special}${after}`;
        expect(isTenantId(candidate)).toBe(false);
        expect(() => parseTenantId(candidate)).toThrow(
          expect.objectContaining({ code: 'INVALID_TENANT_ID' }),
        );
        expect(() => tenantKey('mtpaas', candidate, 'rl')).toThrow(
          expect.objectContaining({ code: 'INVALID_TENANT_ID' }),
        );
      }),
    );
  });

  it('hashes free-form parts so they cannot inject separators or tags', () => {
    fc.assert(
      fc.property(fc.string(), (part) => {
        const safe = safeKeyPart(part);
        expect(safe).toMatch(/^[a-z0-9_-]{1,64}$/);
      }),
    );
    expect(safeKeyPart('user:1}{x')).toMatch(/^h_[0-9a-f]{24}$/);
    expect(tenantKey('mtpaas', 'univ_8', 'rl', 'u', 'a:b{c}')).toMatch(
      /^mtpaas:\{univ_8\}:rl:u:h_[0-9a-f]{24}$/,
    );
  });
});
