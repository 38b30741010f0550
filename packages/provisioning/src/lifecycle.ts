import { MtPaasError, type TenantStatus } from '@mt-paas/context';

/** A lifecycle action of the provisioner. */
export type LifecycleAction =
  | 'onboard'
  | 'suspend'
  | 'resume'
  | 'block'
  | 'unblock'
  | 'offboard'
  | 'restore'
  | 'purge'
  | 'move'
  | 'import';

/** One row of the lifecycle table: from which states an action may start, and where it leads. */
export interface LifecycleTransition {
  /** States the action may start from. */
  from: readonly TenantStatus[];
  /** The state after the action (`move` keeps the state). */
  to: TenantStatus | 'same';
  /** When the tenant is already in `to`, the action is a no-op instead of a `CONFLICT` (retried webhooks). */
  idempotent: boolean;
}

/**
 * The tenant lifecycle:
 *
 * ```
 *   (new) ─onboard→ provisioning ─→ active ⇄ suspended       active|grace|suspended ─block→ blocked ─unblock→ active
 *   any live state ─offboard→ deleted ─restore→ active        deleted ─purge→ purged ─onboard→ provisioning
 * ```
 */
export const LIFECYCLE: Readonly<Record<LifecycleAction, LifecycleTransition>> = {
  onboard: { from: ['provisioning', 'purged'], to: 'active', idempotent: true },
  suspend: { from: ['active', 'grace'], to: 'suspended', idempotent: true },
  resume: { from: ['suspended'], to: 'active', idempotent: false },
  block: { from: ['active', 'grace', 'suspended'], to: 'blocked', idempotent: true },
  unblock: { from: ['blocked'], to: 'active', idempotent: false },
  offboard: {
    from: ['provisioning', 'active', 'grace', 'suspended', 'blocked'],
    to: 'deleted',
    idempotent: true,
  },
  restore: { from: ['deleted'], to: 'active', idempotent: false },
  purge: { from: ['deleted'], to: 'purged', idempotent: false },
  move: { from: ['active', 'grace', 'suspended', 'blocked'], to: 'same', idempotent: false },
  import: { from: ['provisioning', 'purged'], to: 'active', idempotent: false },
};

/** What an action does to a tenant in `current`: run it, or nothing (already there). */
export type TransitionPlan = { kind: 'run'; to: TenantStatus } | { kind: 'noop' };

/**
 * Decides an action against the tenant's current state.
 *
 * @throws MtPaasError `CONFLICT` naming the current state when the action is not allowed from it.
 */
export function planTransition(
  action: LifecycleAction,
  tenantId: string,
  current: TenantStatus,
): TransitionPlan {
  const transition = LIFECYCLE[action];
  const to = transition.to === 'same' ? current : transition.to;
  if (transition.idempotent && current === to && action !== 'onboard') return { kind: 'noop' };
  if (action === 'onboard' && current === 'active') return { kind: 'noop' };
  if (!transition.from.includes(current)) {
    throw new MtPaasError(
      'CONFLICT',
      `Cannot ${action} tenant "${tenantId}": it is ${current}. ${hint(action, current)}`,
      { details: { tenantId, action, status: current, allowedFrom: [...transition.from] } },
    );
  }
  return { kind: 'run', to };
}

function hint(action: LifecycleAction, current: TenantStatus): string {
  if (current === 'deleted') return 'Restore it first (tenant restore), or purge it for good.';
  if (current === 'purged') return 'Its data is gone; onboard it again to reuse the id.';
  if (current === 'blocked') return 'Unblock it first.';
  if (current === 'provisioning') return 'Finish onboarding first (run onboard again: it resumes).';
  if (action === 'purge') return 'Offboard it first (soft delete), then purge.';
  if (action === 'onboard') return 'The id is taken by an existing tenant; choose another id.';
  if (action === 'import')
    return 'Import restores into a new or purged id: offboard and purge the tenant first.';
  return `${action} applies to tenants that are ${LIFECYCLE[action].from.join(' or ')}.`;
}
