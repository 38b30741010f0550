export type { ConfigIssue } from './config-error.js';
export { formatConfigIssue, getConfigIssues } from './config-error.js';
export { DEFAULT_PLAN_NAMES, DEFAULT_PLANS } from './default-plans.js';
export type { ConfigEnv } from './interpolate.js';
export { interpolate } from './interpolate.js';
export type { ConfigFiles, LoadConfigOptions } from './load-config.js';
export { DEFAULT_CONFIG_FILES, findConfigFiles, loadConfig, resolveEnvironment } from './load-config.js';
export type { ConfigSource, ParseConfigOptions } from './parse-config.js';
export { parseConfig } from './parse-config.js';
export { REDACTED, redact } from './redact.js';
export type {
  AuthConfig,
  DatabaseConfig,
  DockerIsolationConfig,
  FeaturesConfig,
  IsolationConfig,
  JwtAlgorithm,
  LoggingConfig,
  LogLevel,
  MarketplaceConfig,
  MarketplaceWebhooksConfig,
  MtPaasConfig,
  PlanConfig,
  PlanQuota,
  RedisConfig,
  SecurityConfig,
  ServiceConfig,
  TenantIdentificationConfig,
  TenantIdentificationMethod,
  VectorStoreType,
} from './schema.js';
export {
  createConfigSchema,
  ISOLATION_MODE_ALIASES,
  JWT_ALGORITHMS,
  LOG_LEVELS,
  mtPaasConfigSchema,
  QUOTA_ENFORCEMENTS,
  QUOTA_PERIODS,
  TENANT_IDENTIFICATION_TYPES,
  TOP_LEVEL_KEYS,
  VECTOR_STORE_TYPES,
} from './schema.js';
