import { describe, expect, it } from 'vitest';
import { ERROR_STATUS, isMtPaasError, MtPaasError } from './errors.js';

describe('MtPaasError', () => {
  it('carries code, status, details, cause and retry-after', () => {
    const cause = new Error('boom');
    const error = new MtPaasError('RATE_LIMITED', 'Slow down; retry after 3 s.', {
      details: { limit: 10 },
      cause,
      retryAfterSeconds: 3,
    });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('MtPaasError');
    expect(error.code).toBe('RATE_LIMITED');
    expect(error.httpStatus).toBe(429);
    expect(error.details).toEqual({ limit: 10 });
    expect(error.cause).toBe(cause);
    expect(error.retryAfterSeconds).toBe(3);
  });

  it('carries response headers, lower-cased and frozen, never in the body', () => {
    const given = { 'RateLimit-Limit': '2', 'retry-after': '30' };
    const error = new MtPaasError('RATE_LIMITED', 'Slow down.', { headers: given });
    expect(error.headers).toEqual({ 'ratelimit-limit': '2', 'retry-after': '30' });
    expect(Object.isFrozen(error.headers)).toBe(true);
    given['retry-after'] = '0';
    expect(error.headers?.['retry-after']).toBe('30');
    expect(JSON.stringify(error)).not.toContain('ratelimit');
    expect(new MtPaasError('INTERNAL', 'x').headers).toBeUndefined();
  });

  it('serialises to the wire body without cause or stack', () => {
    const error = new MtPaasError('TENANT_SUSPENDED', 'Tenant is suspended.', { cause: new Error('secret') });
    expect(JSON.parse(JSON.stringify(error))).toEqual({
      error: { code: 'TENANT_SUSPENDED', message: 'Tenant is suspended.' },
    });
    const withDetails = new MtPaasError('QUOTA_EXCEEDED', 'Quota used up.', {
      details: { meter: 'llm_tokens' },
    });
    expect(withDetails.toJSON()).toEqual({
      error: { code: 'QUOTA_EXCEEDED', message: 'Quota used up.', details: { meter: 'llm_tokens' } },
    });
  });

  it('is recognised across package copies through the global symbol, not instanceof', () => {
    const foreign = Object.assign(new Error('from another copy'), { code: 'FORBIDDEN' });
    Object.defineProperty(foreign, Symbol.for('mt-paas.error'), { value: true });
    expect(foreign instanceof MtPaasError).toBe(false);
    expect(MtPaasError.isInstance(foreign)).toBe(true);
    expect(MtPaasError.isInstance(new Error('plain'))).toBe(false);
    expect(MtPaasError.isInstance(null)).toBe(false);
    expect(MtPaasError.isInstance({ code: 'FORBIDDEN' })).toBe(false);
    expect(isMtPaasError(new MtPaasError('CONFLICT', 'x'), 'CONFLICT')).toBe(true);
    expect(isMtPaasError(new MtPaasError('CONFLICT', 'x'), 'FORBIDDEN')).toBe(false);
  });

  it('maps the documented codes to their HTTP statuses', () => {
    expect(ERROR_STATUS).toMatchObject({
      INVALID_TENANT_ID: 400,
      TENANT_NOT_IDENTIFIED: 400,
      UNAUTHENTICATED: 401,
      WEBHOOK_SIGNATURE_INVALID: 401,
      SUBSCRIPTION_EXPIRED: 402,
      FORBIDDEN: 403,
      TENANT_SUSPENDED: 403,
      TENANT_BLOCKED: 403,
      FEATURE_NOT_IN_PLAN: 403,
      CROSS_TENANT_ACCESS: 403,
      TENANT_NOT_FOUND: 404,
      CONFLICT: 409,
      RATE_LIMITED: 429,
      QUOTA_EXCEEDED: 429,
      TENANT_CONTEXT_MISSING: 500,
      CONFIG_INVALID: 500,
      TENANT_STORAGE_UNAVAILABLE: 503,
    });
    expect(new MtPaasError('CONFLICT', 'x', { httpStatus: 422 }).httpStatus).toBe(422);
  });
});
