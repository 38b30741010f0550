import { isMtPaasError, TENANT_STATUSES, type TenantStatus } from '@mt-paas/context';
import { describe, expect, it } from 'vitest';
import { LIFECYCLE, type LifecycleAction, planTransition } from './lifecycle.js';

const actions = Object.keys(LIFECYCLE) as LifecycleAction[];

describe('planTransition', () => {
  it('runs each allowed transition to its target state', () => {
    expect(planTransition('suspend', 't1', 'active')).toEqual({ kind: 'run', to: 'suspended' });
    expect(planTransition('resume', 't1', 'suspended')).toEqual({ kind: 'run', to: 'active' });
    expect(planTransition('block', 't1', 'suspended')).toEqual({ kind: 'run', to: 'blocked' });
    expect(planTransition('unblock', 't1', 'blocked')).toEqual({ kind: 'run', to: 'active' });
    expect(planTransition('offboard', 't1', 'blocked')).toEqual({ kind: 'run', to: 'deleted' });
    expect(planTransition('restore', 't1', 'deleted')).toEqual({ kind: 'run', to: 'active' });
    expect(planTransition('purge', 't1', 'deleted')).toEqual({ kind: 'run', to: 'purged' });
    expect(planTransition('onboard', 't1', 'purged')).toEqual({ kind: 'run', to: 'active' });
    expect(planTransition('move', 't1', 'suspended')).toEqual({ kind: 'run', to: 'suspended' });
  });

  it('treats a repeated suspend / block / offboard / onboard as a no-op', () => {
    expect(planTransition('suspend', 't1', 'suspended')).toEqual({ kind: 'noop' });
    expect(planTransition('block', 't1', 'blocked')).toEqual({ kind: 'noop' });
    expect(planTransition('offboard', 't1', 'deleted')).toEqual({ kind: 'noop' });
    expect(planTransition('onboard', 't1', 'active')).toEqual({ kind: 'noop' });
  });

  it('refuses every other (action, state) pair with CONFLICT naming the current state', () => {
    let refused = 0;
    for (const action of actions) {
      for (const status of TENANT_STATUSES as TenantStatus[]) {
        const transition = LIFECYCLE[action];
        const target = transition.to === 'same' ? status : transition.to;
        const allowed =
          transition.from.includes(status) ||
          (transition.idempotent && status === target) ||
          (action === 'onboard' && status === 'active');
        if (action === 'import' && status === 'provisioning') continue;
        if (allowed) {
          expect(() => planTransition(action, 'univ_8', status)).not.toThrow();
          continue;
        }
        refused += 1;
        try {
          planTransition(action, 'univ_8', status);
          expect.unreachable(`${action} from ${status} must be refused`);
        } catch (error) {
          expect(isMtPaasError(error, 'CONFLICT')).toBe(true);
          expect((error as Error).message).toContain(`it is ${status}`);
          expect((error as { details: Record<string, unknown> }).details.status).toBe(status);
          expect((error as { httpStatus: number }).httpStatus).toBe(409);
        }
      }
    }
    expect(refused).toBeGreaterThan(30);
  });

  it('never resumes a blocked tenant or purges a live one', () => {
    expect(() => planTransition('resume', 'x1', 'blocked')).toThrow(/Unblock it first/);
    expect(() => planTransition('purge', 'x1', 'active')).toThrow(/Offboard it first/);
    expect(() => planTransition('restore', 'x1', 'purged')).toThrow(/onboard it again/);
  });
});
