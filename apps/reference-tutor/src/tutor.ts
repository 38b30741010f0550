/**
 * What the route modules share: the framework (`@mt-paas/framework`), the RAG settings of
 * `custom.rag`, session tokens and the activity log.
 */
import { MtPaasError } from '@mt-paas/context';
import type { TenantTransaction } from '@mt-paas/db';
import type { FrameworkProviders, ServiceFramework } from '@mt-paas/framework';
// the request decorations and route config of the tenant pipeline (req.tenant, config.mtPaas)
import type {} from '@mt-paas/middleware/fastify';
import type { FastifyRequest } from 'fastify';
import type { RagSettings } from './chunker.js';

export type Tx = TenantTransaction;
export type TenantAi = FrameworkProviders;

export interface SessionClaims {
  sub: string;
  tenantId: string;
  email: string;
  name: string;
  roles: string[];
}

export interface Tutor {
  readonly mt: ServiceFramework;
  readonly rag: RagSettings;
  /** The request's tenant's AI (LLM chain, embeddings, vector store), from `mt.providersFor`. */
  ai(request: FastifyRequest): Promise<TenantAi>;
  /** A session JWT from `mt.issueToken` (`auth.jwt.secret`, `auth.jwt.expiry_hours`, the tenant claim). */
  issueToken(claims: SessionClaims): Promise<string>;
  /** `mt.logActivity`, never failing the request (a bad statement is logged, not thrown). */
  activity(verb: string, object: string, result?: Record<string, unknown>): void;
}

/** xAPI verbs the tutor uses beyond ADL's list. */
export const VERBS = {
  created: 'https://w3id.org/xapi/dod-isd/verbs/created',
  uploaded: 'https://w3id.org/xapi/dod-isd/verbs/uploaded',
} as const;

export function createTutor(mt: ServiceFramework, rag: RagSettings): Tutor {
  const jwt = mt.config.auth.jwt;
  if (jwt.secret === undefined || !jwt.algorithm.startsWith('HS')) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'The tutor signs its own session tokens: set auth.jwt.secret (JWT_SECRET, at least 32 characters) with an HS* algorithm.',
    );
  }
  return {
    mt,
    rag,
    async ai(request) {
      const tenantId = request.tenant?.tenantId;
      if (tenantId === undefined)
        throw new MtPaasError('TENANT_CONTEXT_MISSING', 'This route has no tenant.');
      return mt.providersFor(tenantId);
    },
    issueToken(claims) {
      return mt.issueToken({
        sub: claims.sub,
        tenantId: claims.tenantId,
        email: claims.email,
        name: claims.name,
        roles: claims.roles,
      });
    },
    activity(verb, object, result) {
      try {
        mt.logActivity({ verb, object, ...(result === undefined ? {} : { result }) });
      } catch (error) {
        mt.logger.warn({ err: error, verb, object }, 'activity not logged');
      }
    },
  };
}
