export type { AfterCommit } from './after-commit.js';
export type { ControlConfigInput, ControlDependencies } from './control-options-from-config.js';
export { controlOptionsFromConfig } from './control-options-from-config.js';
export type {
  AfterOnboardContext,
  FrameworkFastifyPlugin,
  FrameworkHooks,
  ServiceFramework,
  ServiceFrameworkExtras,
  ServiceFrameworkOptions,
} from './create-service-framework.js';
export { createServiceFramework } from './create-service-framework.js';
export type {
  FrameworkConfig,
  FrameworkConfigSource,
  FrameworkCustomConfig,
  RagConfig,
} from './load-framework-config.js';
export { frameworkCustomSchema } from './load-framework-config.js';
export { clientOptionsFromConfig, receiverOptionsFromConfig } from './marketplace-options-from-config.js';
export type { ConfigPipelineOptions, PipelineConfigInput } from './pipeline-options-from-config.js';
export { pipelineOptionsFromConfig } from './pipeline-options-from-config.js';
export type { FrameworkProviders } from './providers.js';
export type { SsoOptions } from './sso.js';
export type { IssueTokenInput, TokenIssuer } from './tokens.js';
export type { VectorStoreFromConfigOptions } from './vector-store-config.js';
export { createVectorStoreFromConfig } from './vector-store-config.js';
