import type { QuotaEnforcement, QuotaPeriod } from '@mt-paas/context';
import { MtPaasError } from '@mt-paas/context';
import type {
  EntitlementsLayer,
  JwtAuthOptions,
  ResolutionStrategy,
  TenantPipelineOptions,
} from '@mt-paas/middleware';

/** The parts of `@mt-paas/config`'s typed `MtPaasConfig` the pipeline options come from. */
export interface PipelineConfigInput {
  tenantIdentification?: {
    methods: ReadonlyArray<
      | { type: 'header'; name: string }
      | { type: 'subdomain'; extractPattern: string; baseDomain?: string | undefined }
      | { type: 'jwt_claim'; claimName: string }
      | { type: 'query_param'; name: string }
      | { type: 'cookie'; name: string }
      | { type: 'path'; prefix: string }
    >;
  };
  auth?: {
    jwt: {
      enabled: boolean;
      secret?: string | undefined;
      publicKey?: string | undefined;
      jwksUrl?: string | undefined;
      algorithm: string;
      issuer?: string | undefined;
      audience?: readonly string[] | undefined;
      clockToleranceSeconds: number;
      tenantClaim: string;
    };
  };
  features?: { controlledBySubscription: boolean; defaults: Readonly<Record<string, boolean>> };
  plans?: Readonly<
    Record<
      string,
      {
        rpm: number | null;
        features: Readonly<Record<string, boolean>>;
        quotas: Readonly<
          Record<string, { limit: number | null; period: QuotaPeriod; enforcement: QuotaEnforcement }>
        >;
      }
    >
  >;
  security?: { rateLimit: { enabled: boolean; defaultRpm: number } };
  marketplace?: { gracePeriodHours: number };
}

/** Pipeline options derived from a config (everything except `directory` and the sinks). */
export type ConfigPipelineOptions = Pick<
  TenantPipelineOptions,
  'strategies' | 'jwt' | 'entitlements' | 'rateLimit' | 'gracePeriodMs'
>;

/**
 * Maps the typed `mt-paas.yaml` (from `@mt-paas/config`) onto pipeline options:
 * `tenant_identification.methods` → `strategies`, `auth.jwt` → `jwt`, `plans` and `features.defaults` →
 * `entitlements`, `security.rate_limit` → `rateLimit`, `marketplace.grace_period_hours` → `gracePeriodMs`.
 *
 * @example
 * const config = await loadConfig();
 * const pipeline = createTenantPipeline({ ...pipelineOptionsFromConfig(config), directory: catalog.directory });
 */
export function pipelineOptionsFromConfig(config: PipelineConfigInput): ConfigPipelineOptions {
  const options: ConfigPipelineOptions = {};
  let tenantClaim = config.auth?.jwt.tenantClaim;
  if (config.tenantIdentification !== undefined) {
    options.strategies = config.tenantIdentification.methods.map((method): ResolutionStrategy => {
      switch (method.type) {
        case 'header':
          return { type: 'header', name: method.name };
        case 'subdomain':
          return {
            type: 'subdomain',
            pattern: method.extractPattern,
            ...(method.baseDomain === undefined ? {} : { baseDomain: method.baseDomain }),
          };
        case 'jwt_claim':
          tenantClaim = method.claimName;
          return { type: 'jwt-claim', claim: method.claimName };
        case 'query_param':
          return { type: 'query', name: method.name };
        case 'cookie':
          return { type: 'cookie', name: method.name };
        case 'path':
          return { type: 'path-prefix', prefix: method.prefix };
      }
      throw new MtPaasError(
        'CONFIG_INVALID',
        `Unknown tenant identification method ${JSON.stringify(method)}.`,
      );
    });
  }
  const jwt = config.auth?.jwt;
  if (jwt?.enabled === true) {
    const jwtOptions: JwtAuthOptions = {
      algorithms: [jwt.algorithm],
      clockToleranceSeconds: jwt.clockToleranceSeconds,
      tenantClaim: tenantClaim ?? jwt.tenantClaim,
      ...(jwt.secret === undefined ? {} : { secret: jwt.secret }),
      ...(jwt.secret === undefined && jwt.jwksUrl !== undefined ? { jwksUrl: jwt.jwksUrl } : {}),
      ...(jwt.secret === undefined && jwt.jwksUrl === undefined && jwt.publicKey !== undefined
        ? { publicKey: jwt.publicKey }
        : {}),
      ...(jwt.issuer === undefined ? {} : { issuer: jwt.issuer }),
      ...(jwt.audience === undefined ? {} : { audience: jwt.audience }),
    };
    options.jwt = jwtOptions;
  }
  const featureDefaults = config.features?.defaults;
  const planDefaults: Record<string, EntitlementsLayer> = {};
  for (const [name, plan] of Object.entries(config.plans ?? {})) {
    planDefaults[name] = {
      plan: name,
      features: plan.features,
      limits: { rpm: plan.rpm, quotas: plan.quotas },
    };
  }
  options.entitlements = {
    planDefaults,
    ...(featureDefaults === undefined ? {} : { featureDefaults }),
    // Not controlled by the subscription: the configured defaults win over what the tenant record says.
    ...(config.features?.controlledBySubscription === false && featureDefaults !== undefined
      ? { overrides: () => ({ features: featureDefaults }) }
      : {}),
  };
  if (config.security !== undefined) {
    options.rateLimit = {
      enabled: config.security.rateLimit.enabled,
      defaultRpm: config.security.rateLimit.defaultRpm,
    };
  }
  if (config.marketplace !== undefined)
    options.gracePeriodMs = config.marketplace.gracePeriodHours * 3_600_000;
  return options;
}
