import type { IsolationMode, QuotaEnforcement, QuotaPeriod } from '@mt-paas/context';
import { z } from 'zod';
import { DEFAULT_PLANS } from './default-plans.js';
import { deepMerge, isPlainObject } from './merge.js';
import {
  duration,
  httpUrl,
  nonEmptyString,
  nonNegativeInt,
  positiveInt,
  postgresUrl,
  regexString,
} from './primitives.js';

// The YAML keeps the seed's snake_case; every section's schema ends in a `.transform()` that
// spells the typed result out in camelCase. Reading the transforms is reading the key mapping.

// ---------------------------------------------------------------------------------------------
// service
// ---------------------------------------------------------------------------------------------

/** `service:` — who this service is. */
export interface ServiceConfig {
  /** Stable id of the service in the marketplace (`service.id`). @default "mt_paas_service" */
  id: string;
  /** Display name (`service.name`). @default the id */
  name: string;
  /** Version reported in heartbeats (`service.version`). @default "0.0.0" */
  version: string;
  /** Free text (`service.description`). */
  description?: string;
  /** Public base URL of the service, used to build absolute callback URLs (`service.public_url`). */
  publicUrl?: string;
}

const serviceSchema = z
  .strictObject({
    id: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, {
        error: 'expected letters, digits, "_", "-" or "." (at most 63 characters), e.g. "keli_tutor"',
      })
      .default('mt_paas_service'),
    name: nonEmptyString.optional(),
    version: nonEmptyString.default('0.0.0'),
    description: z.string().optional(),
    public_url: httpUrl.optional(),
  })
  .transform(
    (value): ServiceConfig => ({
      id: value.id,
      name: value.name ?? value.id,
      version: value.version,
      description: value.description,
      publicUrl: value.public_url,
    }),
  );

// ---------------------------------------------------------------------------------------------
// marketplace
// ---------------------------------------------------------------------------------------------

/** `marketplace.webhooks:` — how webhooks from the marketplace are verified. */
export interface MarketplaceWebhooksConfig {
  /**
   * Standard Webhooks signing secrets (`whsec_…`), newest first; several during a rotation
   * (`marketplace.webhooks.secrets`, a string or a list).
   */
  secrets: string[];
  /** Shared secret of the legacy `X-Webhook-Secret` header (`marketplace.webhooks.legacy_secret`). */
  legacySecret?: string;
  /** Accepted clock skew of a signed webhook (`marketplace.webhooks.tolerance_seconds`). @default 300 */
  toleranceSeconds: number;
}

/** `marketplace:` — the link to the service marketplace. */
export interface MarketplaceConfig {
  /** Whether the marketplace is used at all (`marketplace.enabled`). @default true when `api_url` is set */
  enabled: boolean;
  /** Base URL of the marketplace API (`marketplace.api_url`). */
  apiUrl?: string;
  /** API key the service authenticates with (`marketplace.api_key`). Secret. */
  apiKey?: string;
  /** Heartbeat period (`marketplace.heartbeat_interval`, seconds or "1m"). @default 60 */
  heartbeatIntervalSeconds: number;
  /** Check the subscription on every request (`marketplace.subscription_check`). @default true */
  subscriptionCheck: boolean;
  /** How long an expired subscription is still served (`marketplace.grace_period_hours`). @default 24 */
  gracePeriodHours: number;
  /** Timeout of one call to the marketplace (`marketplace.timeout_seconds`). @default 10 */
  timeoutSeconds: number;
  /** Webhook verification (`marketplace.webhooks`). */
  webhooks: MarketplaceWebhooksConfig;
}

const webhooksSchema = z
  .strictObject({
    secrets: z
      .union([nonEmptyString, z.array(nonEmptyString)], { error: 'expected a secret or a list of secrets' })
      .optional(),
    legacy_secret: nonEmptyString.optional(),
    tolerance_seconds: duration('seconds').default(300),
  })
  .transform(
    (value): MarketplaceWebhooksConfig => ({
      secrets:
        value.secrets === undefined
          ? []
          : typeof value.secrets === 'string'
            ? [value.secrets]
            : value.secrets,
      legacySecret: value.legacy_secret,
      toleranceSeconds: value.tolerance_seconds,
    }),
  );

const marketplaceSchema = z
  .strictObject({
    enabled: z.boolean().optional(),
    api_url: httpUrl.optional(),
    api_key: nonEmptyString.optional(),
    heartbeat_interval: duration('seconds').default(60),
    subscription_check: z.boolean().default(true),
    grace_period_hours: z.union([z.literal(0), duration('hours')]).default(24),
    timeout_seconds: duration('seconds').default(10),
    webhooks: webhooksSchema.prefault({}),
  })
  .superRefine((value, context) => {
    if (value.enabled === true && value.api_url === undefined) {
      context.addIssue({
        code: 'custom',
        path: ['api_url'],
        message: 'is required when marketplace.enabled is true (or set enabled: false to run standalone)',
      });
    }
  })
  .transform(
    (value): MarketplaceConfig => ({
      enabled: value.enabled ?? value.api_url !== undefined,
      apiUrl: value.api_url,
      apiKey: value.api_key,
      heartbeatIntervalSeconds: value.heartbeat_interval,
      subscriptionCheck: value.subscription_check,
      gracePeriodHours: value.grace_period_hours,
      timeoutSeconds: value.timeout_seconds,
      webhooks: value.webhooks,
    }),
  );

// ---------------------------------------------------------------------------------------------
// isolation
// ---------------------------------------------------------------------------------------------

/** Spellings accepted for `isolation.mode`, case-insensitive (`-` and `_` interchangeable). */
export const ISOLATION_MODE_ALIASES: Readonly<Record<string, IsolationMode>> = {
  row: 'row',
  rls: 'row',
  row_level: 'row',
  row_level_security: 'row',
  shared: 'row',
  shared_database: 'row',
  schema: 'schema',
  schema_per_tenant: 'schema',
  database: 'database',
  database_per_tenant: 'database',
  db_per_tenant: 'database',
  docker: 'docker',
  docker_per_tenant: 'docker',
  container_per_tenant: 'docker',
};

const isolationModeSchema = z.string().transform((value, context): IsolationMode => {
  const mode = ISOLATION_MODE_ALIASES[value.trim().toLowerCase().replaceAll('-', '_')];
  if (mode === undefined) {
    context.addIssue({
      code: 'custom',
      message: `unknown isolation mode "${value}": use row, schema, database or docker (or the seed's SCHEMA_PER_TENANT, DATABASE_PER_TENANT, DOCKER_PER_TENANT)`,
    });
    return z.NEVER;
  }
  return mode;
});

/** `isolation.docker:` — settings of the `docker` mode (a container set per tenant). */
export interface DockerIsolationConfig {
  /** First host port handed out to tenants (`port_range_start`). @default 10200 */
  portRangeStart: number;
  /** Ports reserved per tenant (`port_range_size`). @default 100 */
  portRangeSize: number;
  /**
   * docker-compose template rendered per tenant (`compose_template`). A relative path is
   * resolved against the directory of the main config file by `loadConfig`.
   * @default "templates/docker-compose.template.yml"
   */
  composeTemplate: string;
}

/** `isolation:` — where a tenant's data lives. */
export interface IsolationConfig {
  /** `row` (shared tables + RLS), `schema`, `database` or `docker` (`isolation.mode`). @default "row" */
  mode: IsolationMode;
  /** Docker-per-tenant settings (`isolation.docker`). */
  docker: DockerIsolationConfig;
}

const dockerSchema = z
  .strictObject({
    port_range_start: positiveInt.max(65_535, { error: 'must be a TCP port (1-65535)' }).default(10_200),
    port_range_size: positiveInt.default(100),
    compose_template: nonEmptyString.default('templates/docker-compose.template.yml'),
  })
  .superRefine((value, context) => {
    if (value.port_range_start + value.port_range_size - 1 > 65_535) {
      context.addIssue({
        code: 'custom',
        path: ['port_range_size'],
        message: `port_range_start + port_range_size goes past port 65535; lower one of them`,
      });
    }
  })
  .transform(
    (value): DockerIsolationConfig => ({
      portRangeStart: value.port_range_start,
      portRangeSize: value.port_range_size,
      composeTemplate: value.compose_template,
    }),
  );

const isolationSchema = z
  .strictObject({
    mode: isolationModeSchema.default('row'),
    docker: dockerSchema.prefault({}),
  })
  .transform((value): IsolationConfig => ({ mode: value.mode, docker: value.docker }));

// ---------------------------------------------------------------------------------------------
// database
// ---------------------------------------------------------------------------------------------

/** Vector stores `database.vector.type` accepts. */
export const VECTOR_STORE_TYPES = ['memory', 'pgvector', 'qdrant', 'chroma'] as const;
/** A vector store type. */
export type VectorStoreType = (typeof VECTOR_STORE_TYPES)[number];

/** `database:` — the central catalog, tenant databases and the vector store. */
export interface DatabaseConfig {
  /**
   * True when no `database.central.url` is set: mt-paas runs on embedded Postgres (PGlite)
   * under `dataDir`.
   */
  embedded: boolean;
  /** Directory of the embedded database (`database.data_dir`). @default ".data" */
  dataDir: string;
  central: {
    /** Connection string of the central catalog (`database.central.url`). Omit for embedded. */
    url?: string;
    /** Connections in the central pool (`database.central.pool_size`). @default 10 */
    poolSize: number;
  };
  tenant: {
    /**
     * Connection string of a tenant's database in `database` mode, with a `{tenant_id}`
     * placeholder (`database.tenant.url_template`).
     */
    urlTemplate?: string;
    /** Connections per tenant pool (`database.tenant.pool_size_per_tenant`). @default 5 */
    poolSizePerTenant: number;
    /** Cap on all tenant connections together; idle pools are closed first (`max_connections`). @default 100 */
    maxConnections: number;
  };
  vector: {
    /** `memory`, `pgvector`, `qdrant` or `chroma` (`database.vector.type`). @default "memory" */
    type: VectorStoreType;
    /** Server URL (`database.vector.url`); required for qdrant and chroma. */
    url?: string;
    /** API key of the vector server (`database.vector.api_key`). Secret. */
    apiKey?: string;
    /** Prefix of per-tenant collections (`database.vector.collection_prefix`). @default "tenant_" */
    collectionPrefix: string;
  };
}

const vectorSchema = z
  .strictObject({
    type: z
      .string()
      .transform((value) => value.trim().toLowerCase())
      .pipe(
        z.enum(VECTOR_STORE_TYPES, {
          error: (issue) =>
            issue.input === 'milvus'
              ? 'milvus is not supported yet: use qdrant, chroma, pgvector or memory'
              : `expected one of ${VECTOR_STORE_TYPES.join(', ')}`,
        }),
      )
      .default('memory'),
    url: z.string().trim().min(1).optional(),
    api_key: nonEmptyString.optional(),
    collection_prefix: z
      .string()
      .regex(/^[A-Za-z0-9_-]*$/, { error: 'expected letters, digits, "_" or "-"' })
      .default('tenant_'),
  })
  .superRefine((value, context) => {
    if ((value.type === 'qdrant' || value.type === 'chroma') && value.url === undefined) {
      context.addIssue({
        code: 'custom',
        path: ['url'],
        message: `is required for a ${value.type} vector store (e.g. "http://localhost:6333")`,
      });
    }
  })
  .transform((value): DatabaseConfig['vector'] => ({
    type: value.type,
    url: value.url,
    apiKey: value.api_key,
    collectionPrefix: value.collection_prefix,
  }));

const databaseSchema = z
  .strictObject({
    data_dir: nonEmptyString.default('.data'),
    central: z
      .strictObject({
        url: postgresUrl.optional(),
        pool_size: positiveInt.default(10),
      })
      .prefault({}),
    tenant: z
      .strictObject({
        url_template: postgresUrl
          .refine((value) => value.includes('{tenant_id}'), {
            error:
              'must contain the {tenant_id} placeholder, e.g. "postgresql://host:5432/tenant_{tenant_id}"',
          })
          .optional(),
        pool_size_per_tenant: positiveInt.default(5),
        max_connections: positiveInt.default(100),
      })
      .prefault({}),
    vector: vectorSchema.prefault({}),
  })
  .transform(
    (value): DatabaseConfig => ({
      embedded: value.central.url === undefined,
      dataDir: value.data_dir,
      central: { url: value.central.url, poolSize: value.central.pool_size },
      tenant: {
        urlTemplate: value.tenant.url_template,
        poolSizePerTenant: value.tenant.pool_size_per_tenant,
        maxConnections: value.tenant.max_connections,
      },
      vector: value.vector,
    }),
  );

// ---------------------------------------------------------------------------------------------
// redis
// ---------------------------------------------------------------------------------------------

/** `redis:` — shared counters, caches and pub/sub between instances. */
export interface RedisConfig {
  /** `redis://` URL (`redis.url`). Omit to use in-process stores (one instance only). */
  url?: string;
  /** Prefix of every key mt-paas writes (`redis.key_prefix`). @default "mt-paas:" */
  keyPrefix: string;
}

const redisSchema = z
  .strictObject({
    url: z
      .string()
      .trim()
      .regex(/^rediss?:\/\/\S+$/, {
        error: 'expected a redis:// or rediss:// URL, e.g. "redis://localhost:6379"',
      })
      .optional(),
    key_prefix: z.string().default('mt-paas:'),
  })
  .transform((value): RedisConfig => ({ url: value.url, keyPrefix: value.key_prefix }));

// ---------------------------------------------------------------------------------------------
// tenant_identification
// ---------------------------------------------------------------------------------------------

/** One way to find the tenant id of a request; `tenant_identification.methods` is tried in order. */
export type TenantIdentificationMethod =
  | { type: 'header' /** Header name. @default "X-Tenant-ID" */; name: string }
  | {
      type: 'subdomain';
      /** Regular expression over the Host (without port); group 1 is the tenant id. @default "^([^.]+)" */
      extractPattern: string;
      /** Only hosts under this domain are considered (`base_domain`, e.g. "keli.k-university.ai"). */
      baseDomain?: string;
    }
  | { type: 'jwt_claim' /** Claim holding the tenant id. @default "tenant_id" */; claimName: string }
  | { type: 'query_param' /** Query parameter. @default "tenant_id" */; name: string }
  | { type: 'cookie' /** Cookie name. @default "tenant_id" */; name: string }
  | {
      type: 'path' /** Path prefix before the tenant segment (`/t/<tenant>/…`). @default "/t/" */;
      prefix: string;
    };

function isValidRegex(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}

/** The `type`s of `tenant_identification.methods`. */
export const TENANT_IDENTIFICATION_TYPES = [
  'header',
  'subdomain',
  'jwt_claim',
  'query_param',
  'cookie',
  'path',
] as const;

const methodSchema = z.preprocess(
  (value) => (typeof value === 'string' ? { type: value } : value),
  z.discriminatedUnion(
    'type',
    [
      z.strictObject({ type: z.literal('header'), name: nonEmptyString.default('X-Tenant-ID') }),
      z.strictObject({
        type: z.literal('subdomain'),
        extract_pattern: regexString
          .refine(
            // An invalid expression is already reported by regexString.
            (pattern) => !isValidRegex(pattern) || (new RegExp(`${pattern}|`).exec('')?.length ?? 1) > 1,
            {
              error: 'needs a capture group: group 1 is the tenant id, e.g. "^([^.]+)"',
            },
          )
          .default('^([^.]+)'),
        base_domain: nonEmptyString.optional(),
      }),
      z.strictObject({ type: z.literal('jwt_claim'), claim_name: nonEmptyString.default('tenant_id') }),
      z.strictObject({ type: z.literal('query_param'), name: nonEmptyString.default('tenant_id') }),
      z.strictObject({ type: z.literal('cookie'), name: nonEmptyString.default('tenant_id') }),
      z.strictObject({
        type: z.literal('path'),
        prefix: z.string().regex(/^\//, { error: 'must start with "/"' }).default('/t/'),
      }),
    ],
    { error: `expected type to be one of ${TENANT_IDENTIFICATION_TYPES.join(', ')}` },
  ),
);

/** `tenant_identification:` — how a request names its tenant. */
export interface TenantIdentificationConfig {
  /** Tried in order; the first that yields an id wins. @default header, subdomain, query_param */
  methods: TenantIdentificationMethod[];
}

const tenantIdentificationSchema = z
  .strictObject({
    methods: z
      .array(methodSchema)
      .min(1, {
        error: 'needs at least one method (header, subdomain, jwt_claim, query_param, cookie, path)',
      })
      .prefault([{ type: 'header' }, { type: 'subdomain' }, { type: 'query_param' }]),
  })
  .transform(
    (value): TenantIdentificationConfig => ({
      methods: value.methods.map((method): TenantIdentificationMethod => {
        switch (method.type) {
          case 'subdomain':
            return {
              type: 'subdomain',
              extractPattern: method.extract_pattern,
              baseDomain: method.base_domain,
            };
          case 'jwt_claim':
            return { type: 'jwt_claim', claimName: method.claim_name };
          default:
            return method;
        }
      }),
    }),
  );

// ---------------------------------------------------------------------------------------------
// auth
// ---------------------------------------------------------------------------------------------

/** JWT algorithms `auth.jwt.algorithm` accepts. */
export const JWT_ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;
/** A JWT algorithm. */
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/** `auth:` — who the user of a request is. */
export interface AuthConfig {
  jwt: {
    /** True when a secret, public key or JWKS URL is configured (or `auth.jwt.enabled`). */
    enabled: boolean;
    /** Shared secret for HS* algorithms (`auth.jwt.secret`). Secret. */
    secret?: string;
    /** PEM public key for RS/PS/ES/EdDSA (`auth.jwt.public_key`). */
    publicKey?: string;
    /** JWKS endpoint for RS/PS/ES/EdDSA (`auth.jwt.jwks_url`). */
    jwksUrl?: string;
    /** `auth.jwt.algorithm`. @default "HS256" (or "RS256" when only a JWKS URL / public key is given) */
    algorithm: JwtAlgorithm;
    /** Expected `iss` (`auth.jwt.issuer`). */
    issuer?: string;
    /** Expected `aud` (`auth.jwt.audience`, a string or a list). */
    audience?: string[];
    /** Lifetime of tokens this service issues (`auth.jwt.expiry_hours`, hours or "30m"). @default 24 */
    expiryHours: number;
    /** Allowed clock skew when checking `exp`/`nbf` (`auth.jwt.clock_tolerance_seconds`). @default 30 */
    clockToleranceSeconds: number;
    /** Claim that must equal the resolved tenant id (`auth.jwt.tenant_claim`). @default "tenant_id" */
    tenantClaim: string;
  };
  marketplaceSso: {
    /** Log users in through the marketplace (`auth.marketplace_sso.enabled`). @default false */
    enabled: boolean;
    /** Path (or URL) the marketplace redirects back to (`auth.marketplace_sso.callback_url`). @default "/auth/marketplace/callback" */
    callbackUrl: string;
  };
}

const jwtSchema = z
  .strictObject({
    enabled: z.boolean().optional(),
    secret: nonEmptyString.optional(),
    public_key: nonEmptyString.optional(),
    jwks_url: httpUrl.optional(),
    algorithm: z.enum(JWT_ALGORITHMS, { error: `expected one of ${JWT_ALGORITHMS.join(', ')}` }).optional(),
    issuer: nonEmptyString.optional(),
    audience: z.union([nonEmptyString, z.array(nonEmptyString)]).optional(),
    expiry_hours: duration('hours').default(24),
    clock_tolerance_seconds: z.union([z.literal(0), duration('seconds')]).default(30),
    tenant_claim: nonEmptyString.default('tenant_id'),
  })
  .transform((value, context): AuthConfig['jwt'] => {
    const asymmetricKey = value.public_key ?? value.jwks_url;
    const algorithm = value.algorithm ?? (value.secret === undefined && asymmetricKey ? 'RS256' : 'HS256');
    const symmetric = algorithm.startsWith('HS');
    const enabled = value.enabled ?? (value.secret !== undefined || asymmetricKey !== undefined);
    if (enabled && symmetric && value.secret === undefined) {
      context.addIssue({
        code: 'custom',
        path: ['secret'],
        message: `is required for ${algorithm} (or set jwks_url / public_key with an RS*/ES*/PS*/EdDSA algorithm)`,
      });
    }
    if (enabled && !symmetric && asymmetricKey === undefined) {
      context.addIssue({
        code: 'custom',
        path: ['jwks_url'],
        message: `${algorithm} verifies with a public key: set jwks_url or public_key (a secret is only used by HS* algorithms)`,
      });
    }
    if (value.jwks_url !== undefined && value.public_key !== undefined) {
      context.addIssue({
        code: 'custom',
        path: ['public_key'],
        message: 'set either jwks_url or public_key, not both',
      });
    }
    return {
      enabled,
      secret: value.secret,
      publicKey: value.public_key,
      jwksUrl: value.jwks_url,
      algorithm,
      issuer: value.issuer,
      audience: typeof value.audience === 'string' ? [value.audience] : value.audience,
      expiryHours: value.expiry_hours,
      clockToleranceSeconds: value.clock_tolerance_seconds,
      tenantClaim: value.tenant_claim,
    };
  });

const authSchema = z
  .strictObject({
    jwt: jwtSchema.prefault({}),
    marketplace_sso: z
      .strictObject({
        enabled: z.boolean().default(false),
        callback_url: nonEmptyString.default('/auth/marketplace/callback'),
      })
      .prefault({}),
  })
  .transform(
    (value): AuthConfig => ({
      jwt: value.jwt,
      marketplaceSso: {
        enabled: value.marketplace_sso.enabled,
        callbackUrl: value.marketplace_sso.callback_url,
      },
    }),
  );

// ---------------------------------------------------------------------------------------------
// features
// ---------------------------------------------------------------------------------------------

const featureName = z.string().regex(/^[a-z][a-z0-9_]*$/, {
  error: 'feature names are snake_case: lower-case letters, digits and "_", starting with a letter',
});

/** `features:` — feature flags. */
export interface FeaturesConfig {
  /**
   * Take a tenant's features from its subscription (plan + marketplace entitlements) rather than
   * from `defaults` (`features.controlled_by_subscription`). @default true
   */
  controlledBySubscription: boolean;
  /** Flags used when no subscription says otherwise (`features.defaults`); names stay snake_case. */
  defaults: Record<string, boolean>;
}

const featuresSchema = z
  .strictObject({
    controlled_by_subscription: z.boolean().default(true),
    defaults: z.record(featureName, z.boolean({ error: 'expected true or false' })).default({}),
  })
  .transform(
    (value): FeaturesConfig => ({
      controlledBySubscription: value.controlled_by_subscription,
      defaults: value.defaults,
    }),
  );

// ---------------------------------------------------------------------------------------------
// plans
// ---------------------------------------------------------------------------------------------

/** Reset periods of a quota. */
export const QUOTA_PERIODS = [
  'hourly',
  'daily',
  'monthly',
  'never',
] as const satisfies readonly QuotaPeriod[];
/** What happens when a quota is used up. */
export const QUOTA_ENFORCEMENTS = [
  'block',
  'throttle',
  'alert',
  'overage',
] as const satisfies readonly QuotaEnforcement[];

/** One quota of a plan (`plans.<plan>.quotas.<meter>`). */
export interface PlanQuota {
  /** Units per period; `null` = unlimited (YAML `unlimited`, `null` or `.inf`). */
  limit: number | null;
  /** `hourly`, `daily`, `monthly` or `never` (a cap that never resets). @default "monthly" */
  period: QuotaPeriod;
  /** `block`, `throttle`, `alert` or `overage`. @default "block" */
  enforcement: QuotaEnforcement;
  /** Usage at which an alert is sent before the limit (`soft_limit`). */
  softLimit?: number;
}

/** A plan (`plans.<plan>`); plan names are lower-case. */
export interface PlanConfig {
  /** Display name (`name`). @default the plan key */
  name: string;
  /** Free text (`description`). */
  description?: string;
  /** Requests per minute for the tenant; `null` = unlimited. @default `security.rate_limit.default_rpm` */
  rpm: number | null;
  /** Quotas by meter (`api_requests`, `storage_mb`, `users`, `llm_tokens` …); meter names stay snake_case. */
  quotas: Record<string, PlanQuota>;
  /** Features of the plan (a list of enabled names, or a `name: true|false` map in YAML). */
  features: Record<string, boolean>;
  /** Service level the plan promises, e.g. "99.9%" (`sla`). */
  sla?: string;
}

const unlimited = z
  .union([z.null(), z.literal('unlimited'), z.literal(Number.POSITIVE_INFINITY)])
  .transform(() => null);

const limitSchema = z.union([nonNegativeInt, unlimited], {
  error: 'expected a whole number >= 0, or "unlimited"',
});

const quotaSchema = z.preprocess(
  (value) => (typeof value === 'object' && value !== null ? value : { limit: value }),
  z
    .strictObject({
      limit: limitSchema,
      period: z
        .enum(QUOTA_PERIODS, { error: `expected one of ${QUOTA_PERIODS.join(', ')}` })
        .default('monthly'),
      enforcement: z
        .enum(QUOTA_ENFORCEMENTS, { error: `expected one of ${QUOTA_ENFORCEMENTS.join(', ')}` })
        .default('block'),
      soft_limit: nonNegativeInt.optional(),
    })
    .superRefine((value, context) => {
      if (value.soft_limit !== undefined && value.limit !== null && value.soft_limit > value.limit) {
        context.addIssue({ code: 'custom', path: ['soft_limit'], message: 'must not be greater than limit' });
      }
    })
    .transform(
      (value): PlanQuota => ({
        limit: value.limit,
        period: value.period,
        enforcement: value.enforcement,
        ...(value.soft_limit === undefined ? {} : { softLimit: value.soft_limit }),
      }),
    ),
);

const planFeaturesSchema = z
  .union([z.array(featureName), z.record(featureName, z.boolean({ error: 'expected true or false' }))], {
    error: 'expected a list of feature names or a map of feature: true|false',
  })
  .transform((value) =>
    Array.isArray(value) ? Object.fromEntries(value.map((name) => [name, true] as const)) : value,
  );

const planSchema = z.strictObject({
  name: nonEmptyString.optional(),
  description: z.string().optional(),
  rpm: z
    .union([positiveInt, unlimited], { error: 'expected requests per minute (> 0) or "unlimited"' })
    .optional(),
  quotas: z
    .record(z.string().regex(/^[a-z][a-z0-9_]*$/, { error: 'meter names are snake_case' }), quotaSchema)
    .default({}),
  features: planFeaturesSchema.default({}),
  sla: z.union([nonEmptyString, z.number().transform((value) => `${value}%`)]).optional(),
});

/**
 * Merges the config's `plans:` over {@link DEFAULT_PLANS}: plan names are matched
 * case-insensitively (`FREE` is `free`), a plan set to `null` is removed.
 */
function withDefaultPlans(value: unknown): unknown {
  if (value !== undefined && !isPlainObject(value)) return value; // let the schema report it
  const result: Record<string, unknown> = structuredClone(DEFAULT_PLANS) as Record<string, unknown>;
  for (const [key, plan] of Object.entries(value ?? {})) {
    const name = key.toLowerCase();
    if (plan === null) delete result[name];
    else result[name] = name in result ? deepMerge(result[name], expandQuotaShorthands(plan)) : plan;
  }
  return result;
}

/** `storage_mb: 2048` → `storage_mb: { limit: 2048 }`, so merging keeps the default period. */
function expandQuotaShorthands(plan: unknown): unknown {
  if (!isPlainObject(plan) || !isPlainObject(plan.quotas)) return plan;
  const quotas = Object.fromEntries(
    Object.entries(plan.quotas).map(([meter, quota]) => [
      meter,
      isPlainObject(quota) ? quota : { limit: quota },
    ]),
  );
  return { ...plan, quotas };
}

const plansSchema = z.preprocess(
  withDefaultPlans,
  z.record(
    z.string().regex(/^[a-z][a-z0-9_-]*$/, {
      error: 'plan names are letters, digits, "_" or "-", starting with a letter',
    }),
    planSchema,
  ),
);

// ---------------------------------------------------------------------------------------------
// security
// ---------------------------------------------------------------------------------------------

/** `security:` */
export interface SecurityConfig {
  /** Audit (and report to the marketplace) every cross-tenant access attempt (`cross_tenant_audit`). @default true */
  crossTenantAudit: boolean;
  encryption: {
    /** Encrypt sensitive tenant data at rest (`security.encryption.enabled`). @default false */
    enabled: boolean;
    /** Encryption key, at least 16 characters (`security.encryption.key`). Secret. */
    key?: string;
    /**
     * Retired keys still accepted for decrypting, newest first, during a key rotation
     * (`security.encryption.previous_keys`, a key or a list). Secret. @default []
     */
    previousKeys: string[];
  };
  rateLimit: {
    /** `security.rate_limit.enabled`. @default true */
    enabled: boolean;
    /** Requests per minute when a plan sets no `rpm` (`security.rate_limit.default_rpm`). @default 60 */
    defaultRpm: number;
  };
}

const securitySchema = z
  .strictObject({
    cross_tenant_audit: z.boolean().default(true),
    encryption: z
      .strictObject({
        enabled: z.boolean().optional(),
        key: z
          .string()
          .min(16, { error: 'must be at least 16 characters (32 random bytes, base64, recommended)' })
          .optional(),
        previous_keys: z
          .union(
            [
              z.string().min(16, { error: 'must be at least 16 characters, like key' }),
              z.array(z.string().min(16, { error: 'must be at least 16 characters, like key' })),
            ],
            { error: 'expected a retired key or a list of retired keys' },
          )
          .optional(),
      })
      .superRefine((value, context) => {
        if (value.previous_keys !== undefined && value.key === undefined) {
          context.addIssue({
            code: 'custom',
            path: ['previous_keys'],
            message: 'needs the current key too: set key to the new key and keep the retired ones here',
          });
        }
        if (value.enabled === true && value.key === undefined) {
          context.addIssue({
            code: 'custom',
            path: ['key'],
            // biome-ignore lint/suspicious/noTemplateCurlyInString: shows the config's ${VAR} syntax
            message: 'is required when encryption is enabled (e.g. key: "${AES_SECRET_KEY}")',
          });
        }
      })
      .prefault({}),
    rate_limit: z
      .strictObject({
        enabled: z.boolean().default(true),
        default_rpm: positiveInt.default(60),
      })
      .prefault({}),
  })
  .transform(
    (value): SecurityConfig => ({
      crossTenantAudit: value.cross_tenant_audit,
      encryption: {
        enabled: value.encryption.enabled ?? value.encryption.key !== undefined,
        key: value.encryption.key,
        previousKeys:
          value.encryption.previous_keys === undefined
            ? []
            : typeof value.encryption.previous_keys === 'string'
              ? [value.encryption.previous_keys]
              : value.encryption.previous_keys,
      },
      rateLimit: { enabled: value.rate_limit.enabled, defaultRpm: value.rate_limit.default_rpm },
    }),
  );

// ---------------------------------------------------------------------------------------------
// logging
// ---------------------------------------------------------------------------------------------

/** Log levels (pino's). */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];
const LOG_LEVEL_ALIASES: Readonly<Record<string, LogLevel>> = {
  warning: 'warn',
  critical: 'fatal',
  off: 'silent',
};

/** `logging:` */
export interface LoggingConfig {
  /** Minimum level; case-insensitive, Python's `WARNING`/`CRITICAL` accepted (`logging.level`). @default "info" */
  level: LogLevel;
  activityLog: {
    /** Send xAPI statements to an LRS (`logging.activity_log.enabled`). @default true when an endpoint is set */
    enabled: boolean;
    /** LRS xAPI endpoint (`logging.activity_log.endpoint`). */
    endpoint?: string;
    /** LRS basic-auth user (`logging.activity_log.username`). */
    username?: string;
    /** LRS basic-auth password (`logging.activity_log.password`). Secret. */
    password?: string;
  };
  usageReport: {
    /** Report usage to the marketplace (`logging.usage_report.enabled`). @default true */
    enabled: boolean;
    /** Reporting period (`logging.usage_report.interval_minutes`, minutes or "30s"). @default 5 */
    intervalMinutes: number;
  };
}

const loggingSchema = z
  .strictObject({
    level: z
      .string()
      .transform((value) => {
        const level = value.trim().toLowerCase();
        return LOG_LEVEL_ALIASES[level] ?? level;
      })
      .pipe(z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')} (any case)` }))
      .default('info'),
    activity_log: z
      .strictObject({
        enabled: z.boolean().optional(),
        endpoint: httpUrl.optional(),
        username: nonEmptyString.optional(),
        password: nonEmptyString.optional(),
      })
      .superRefine((value, context) => {
        if (value.enabled === true && value.endpoint === undefined) {
          context.addIssue({
            code: 'custom',
            path: ['endpoint'],
            message: 'is required when the activity log is enabled (the LRS xAPI endpoint)',
          });
        }
      })
      .prefault({}),
    usage_report: z
      .strictObject({
        enabled: z.boolean().default(true),
        interval_minutes: duration('minutes').default(5),
      })
      .prefault({}),
  })
  .transform(
    (value): LoggingConfig => ({
      level: value.level,
      activityLog: {
        enabled: value.activity_log.enabled ?? value.activity_log.endpoint !== undefined,
        endpoint: value.activity_log.endpoint,
        username: value.activity_log.username,
        password: value.activity_log.password,
      },
      usageReport: {
        enabled: value.usage_report.enabled,
        intervalMinutes: value.usage_report.interval_minutes,
      },
    }),
  );

// ---------------------------------------------------------------------------------------------
// the whole file
// ---------------------------------------------------------------------------------------------

/** The resolved, validated config (camelCase). `custom` is typed by the `customSchema` option. */
export interface MtPaasConfig<Custom = Record<string, unknown>> {
  service: ServiceConfig;
  marketplace: MarketplaceConfig;
  isolation: IsolationConfig;
  database: DatabaseConfig;
  redis: RedisConfig;
  tenantIdentification: TenantIdentificationConfig;
  auth: AuthConfig;
  features: FeaturesConfig;
  /** Plans by lower-case name: the four built-in tiers merged with the config's `plans:`. */
  plans: Record<string, PlanConfig>;
  security: SecurityConfig;
  logging: LoggingConfig;
  /** The vendor's own section, free-form unless a `customSchema` is given. */
  custom: Custom;
}

/** The keys a config file may have at the top level. */
export const TOP_LEVEL_KEYS = [
  'service',
  'marketplace',
  'isolation',
  'database',
  'redis',
  'tenant_identification',
  'auth',
  'features',
  'plans',
  'security',
  'logging',
  'custom',
] as const;

/** The default `custom` schema: any mapping. */
const freeFormCustom = z.record(z.string(), z.unknown(), {
  error: 'expected a mapping of your own settings',
});

/**
 * Builds the schema of a whole config file. Input: the YAML's snake_case tree (after `${VAR}`
 * interpolation and overlays); output: {@link MtPaasConfig}. Pass a zod schema to type `custom`.
 */
export function createConfigSchema<Custom = Record<string, unknown>>(
  customSchema?: z.ZodType<Custom>,
): z.ZodType<MtPaasConfig<Custom>> {
  const custom = (customSchema ?? freeFormCustom) as z.ZodType<Custom>;
  return z
    .strictObject(
      {
        service: serviceSchema.prefault({}),
        marketplace: marketplaceSchema.prefault({}),
        isolation: isolationSchema.prefault({}),
        database: databaseSchema.prefault({}),
        redis: redisSchema.prefault({}),
        tenant_identification: tenantIdentificationSchema.prefault({}),
        auth: authSchema.prefault({}),
        features: featuresSchema.prefault({}),
        plans: plansSchema,
        security: securitySchema.prefault({}),
        logging: loggingSchema.prefault({}),
        custom: z.preprocess((value) => value ?? {}, custom),
      },
      {
        error: (issue) =>
          issue.code === 'invalid_type' ? 'expected a mapping (key: value) at the top level' : undefined,
      },
    )
    .superRefine((value, context) => {
      const usesJwtClaim = value.tenant_identification.methods.some((method) => method.type === 'jwt_claim');
      if (usesJwtClaim && !value.auth.jwt.enabled) {
        const index = value.tenant_identification.methods.findIndex((method) => method.type === 'jwt_claim');
        context.addIssue({
          code: 'custom',
          path: ['tenant_identification', 'methods', index],
          message:
            'jwt_claim needs verified tokens: set auth.jwt.secret (HS*) or auth.jwt.jwks_url / public_key, or remove this method',
        });
      }
    })
    .transform(
      (value): MtPaasConfig<Custom> => ({
        service: value.service,
        marketplace: value.marketplace,
        isolation: value.isolation,
        database: value.database,
        redis: value.redis,
        tenantIdentification: value.tenant_identification,
        auth: value.auth,
        features: value.features,
        plans: Object.fromEntries(
          Object.entries(value.plans).map(([key, plan]): [string, PlanConfig] => [
            key,
            {
              name: plan.name ?? key,
              description: plan.description,
              rpm: plan.rpm === undefined ? value.security.rateLimit.defaultRpm : plan.rpm,
              quotas: plan.quotas,
              features: plan.features,
              sla: plan.sla,
            },
          ]),
        ),
        security: value.security,
        logging: value.logging,
        custom: value.custom as Custom,
      }),
    ) as unknown as z.ZodType<MtPaasConfig<Custom>>;
}

/** The schema of a config file with a free-form `custom` section. */
export const mtPaasConfigSchema = createConfigSchema();
