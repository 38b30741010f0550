import { describe, expect, it } from 'vitest';
import { makeTenant } from './__fixtures__/tenants.js';
import { checkTenantStatus } from './status-gate.js';

const now = new Date('2026-06-01T12:00:00Z');
const at = (offsetMs: number) => new Date(now.getTime() + offsetMs);

describe('checkTenantStatus', () => {
  it('admits active tenants without a warning', () => {
    expect(checkTenantStatus(makeTenant('univ_8'), { now: () => now })).toEqual({});
  });

  it.each([
    ['suspended', 'TENANT_SUSPENDED', 403],
    ['deleted', 'TENANT_DELETED', 403],
    ['purged', 'TENANT_NOT_FOUND', 404],
    ['provisioning', 'SERVICE_UNAVAILABLE', 503],
    ['blocked', 'TENANT_BLOCKED', 403],
  ] as const)('refuses %s tenants with %s', (status, code, httpStatus) => {
    expect(() => checkTenantStatus(makeTenant('univ_8', { status }), { now: () => now })).toThrow(
      expect.objectContaining({ code, httpStatus }),
    );
  });

  it("shows the kill switch's message and honours its schedule", () => {
    const block = { reason: 'subscription_expired', message: '구독이 만료되었습니다. 갱신해주세요.' };
    expect(() =>
      checkTenantStatus(makeTenant('univ_8', { status: 'blocked', block }), { now: () => now }),
    ).toThrow(block.message);
    const scheduled = makeTenant('univ_8', {
      status: 'blocked',
      block: { ...block, blockAt: at(3_600_000) },
    });
    expect(checkTenantStatus(scheduled, { now: () => now }).warning).toMatch(/will be blocked/);
    const lifted = makeTenant('univ_8', { status: 'blocked', block: { ...block, until: at(-1) } });
    expect(checkTenantStatus(lifted, { now: () => now })).toEqual({});
  });

  it('serves an expired subscription during its grace period with a warning, then refuses it', () => {
    const inGrace = makeTenant('univ_8', { expiresAt: at(-3_600_000), graceUntil: at(3_600_000) });
    expect(checkTenantStatus(inGrace, { now: () => now }).warning).toMatch(/expired/);
    const byDefault = makeTenant('univ_8', { expiresAt: at(-3_600_000) });
    expect(checkTenantStatus(byDefault, { now: () => now, gracePeriodMs: 86_400_000 }).warning).toMatch(
      /expired/,
    );
    expect(() => checkTenantStatus(byDefault, { now: () => now })).toThrow(
      expect.objectContaining({ code: 'SUBSCRIPTION_EXPIRED', httpStatus: 402 }),
    );
    expect(checkTenantStatus(makeTenant('univ_8', { status: 'grace' }), { now: () => now }).warning).toMatch(
      /grace/,
    );
  });
});
