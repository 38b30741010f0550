import { MtPaasError, type Tenant } from '@mt-paas/context';

/**
 * Tenant metadata key that marks a move window (`@mt-paas/provisioning`'s `moveTenant` sets and clears it):
 * while it is present every unit of work of the tenant runs `READ ONLY` — reads work, a write is refused
 * with `SERVICE_UNAVAILABLE` (503) and `Retry-After`.
 */
export const WRITE_FREEZE_KEY = 'mt_paas_write_freeze';

/** The marker stored under {@link WRITE_FREEZE_KEY}. */
export interface WriteFreeze {
  /** Why writes are paused. @default 'move' */
  reason?: string;
  /** ISO time the pause began. */
  since?: string;
  /** What `Retry-After` says. @default 5 */
  retryAfterSeconds?: number;
}

/** The tenant's write freeze, when its placement is in a move window. */
export function writeFreezeOf(tenant: Pick<Tenant, 'metadata'>): WriteFreeze | undefined {
  const value = tenant.metadata?.[WRITE_FREEZE_KEY];
  return typeof value === 'object' && value !== null ? (value as WriteFreeze) : undefined;
}

/** The refusal of a write (or of a migration) while the tenant is being moved. */
export function movingError(tenantId: string, freeze: WriteFreeze, cause?: unknown): MtPaasError {
  const retryAfterSeconds = Math.max(1, Math.ceil(freeze.retryAfterSeconds ?? 5));
  return new MtPaasError(
    'SERVICE_UNAVAILABLE',
    `Tenant "${tenantId}" is being moved to other storage: writes are paused for a few seconds, reads still work. Retry after ${retryAfterSeconds} s.`,
    {
      retryAfterSeconds,
      headers: { 'retry-after': String(retryAfterSeconds) },
      details: { tenantId, reason: freeze.reason ?? 'move' },
      ...(cause === undefined ? {} : { cause }),
    },
  );
}

/** A write refused by a `READ ONLY` transaction (SQLSTATE 25006), anywhere in the error's causes. */
export function isReadOnlyRefusal(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  if ((error as { code?: unknown }).code === '25006') return true;
  return isReadOnlyRefusal((error as { cause?: unknown }).cause, depth + 1);
}
