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
import { z } from 'zod';

export type Tx = TenantTransaction;

/** Chunking (`custom.rag`, validated by the framework) and retrieval (`custom.tutor.top_k`). */
export interface RagSettings {
  chunkSize: number;
  overlap: number;
  /** Chunks retrieved per question. */
  topK: number;
}

/** `custom.tutor`: the tutor's own settings. */
const tutorSettingsSchema = z.object({
  top_k: z.number().int().min(1).max(50).default(4),
  superadmin_api_key: z.string().min(16, { error: 'must have at least 16 characters' }).nullish(),
});

export type TutorSettings = z.infer<typeof tutorSettingsSchema>;

/** Reads `custom.tutor`; a bad value is `CONFIG_INVALID` naming the key. */
export function tutorSettingsOf(custom: Record<string, unknown>): TutorSettings {
  const parsed = tutorSettingsSchema.safeParse(custom.tutor ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new MtPaasError(
      'CONFIG_INVALID',
      `custom.tutor.${issue.path.join('.')}: ${issue.message}; fix it in mt-paas.yaml (SUPERADMIN_API_KEY for superadmin_api_key).`,
    );
  }
  return parsed.data;
}
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
  readonly settings: TutorSettings;
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

export function createTutor(mt: ServiceFramework): Tutor {
  const settings = tutorSettingsOf(mt.config.custom);
  const rag = {
    chunkSize: mt.config.custom.rag.chunkSize,
    overlap: mt.config.custom.rag.overlap,
    topK: settings.top_k,
  };
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
    settings,
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
