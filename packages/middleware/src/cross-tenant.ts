import type { AuditSink, TenantId } from '@mt-paas/context';
import { MtPaasError } from '@mt-paas/context';
import type { Logger } from 'pino';
import type { PipelineRequest, RequestPrincipal } from './http-types.js';

/** Two tenant ids one request named, and where each came from. */
export interface CrossTenantAttempt {
  /** The request, when known (adds ip, method and path to the audit event). */
  request: Pick<PipelineRequest, 'ip' | 'method' | 'path'> | undefined;
  requestId: string;
  principal: RequestPrincipal;
  /** The tenant the request is for (or was about to be for), grammar-checked. */
  first: { source: string; tenantId: TenantId };
  /** The other tenant it named. */
  other: { source: string; raw: string };
  reason: string;
  /** The client-facing message. @default "The request names two tenants (…); send one tenant only." */
  message?: string;
}

/** Records a `cross_tenant_access_attempt` audit event, then throws `CROSS_TENANT_ACCESS`. */
export type RefuseCrossTenant = (attempt: CrossTenantAttempt) => Promise<never>;

/**
 * The one place a cross-tenant refusal is made, by resolution (sources disagree, the default tenant is
 * not the token's) and by the body guard alike: every refusal is audited before it is thrown. A failing
 * sink is logged and does not turn the 403 into a 500.
 */
export function createCrossTenantRefusal(stage: {
  auditSink: AuditSink | undefined;
  logger: Logger;
  now: () => Date;
}): RefuseCrossTenant {
  return async (attempt) => {
    const { request, principal, first, other } = attempt;
    if (stage.auditSink !== undefined) {
      const event = {
        type: 'cross_tenant_access_attempt' as const,
        severity: 'high' as const,
        tenantId: first.tenantId,
        targetTenantId: other.raw,
        actor: {
          ...(principal.user?.id === undefined ? {} : { userId: principal.user.id }),
          ...(request?.ip === undefined ? {} : { ip: request.ip }),
          ...(principal.service === undefined ? {} : { service: principal.service }),
        },
        requestId: attempt.requestId,
        details: {
          reason: attempt.reason,
          sources: [first.source, other.source],
          ...(request === undefined ? {} : { method: request.method, path: request.path }),
        },
      };
      try {
        await stage.auditSink.record({ ...event, at: stage.now() });
      } catch (error) {
        stage.logger.error({ err: error, audit: event.type }, 'Audit sink failed');
      }
    }
    throw new MtPaasError(
      'CROSS_TENANT_ACCESS',
      attempt.message ??
        `The request names two tenants (${first.source}: "${first.tenantId}", ${other.source}: "${other.raw}"); send one tenant only.`,
      { details: { sources: [first.source, other.source] } },
    );
  };
}
