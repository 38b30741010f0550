export type { AfterCommit } from './after-commit.js';
export type {
  AfterOnboardContext,
  FrameworkFastifyPlugin,
  FrameworkHooks,
  ServiceFramework,
  ServiceFrameworkExtras,
  ServiceFrameworkOptions,
} from './create-service-framework.js';
export { createServiceFramework } from './create-service-framework.js';
export type { FrameworkConfigSource } from './load-framework-config.js';
export type { FrameworkProviders } from './providers.js';
export type { IssueTokenInput, TokenIssuer } from './tokens.js';
export type { VectorStoreFromConfigOptions } from './vector-store-config.js';
export { createVectorStoreFromConfig } from './vector-store-config.js';
