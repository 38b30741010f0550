import type { ConfigEnv, MtPaasConfig } from '@mt-paas/config';
import {
  MtPaasError,
  type QuotaLimit,
  type Tenant,
  type TenantId,
  type UsageRecord,
  type UsageSink,
} from '@mt-paas/context';
import type { Catalog } from '@mt-paas/db';
import type { TenantPipeline } from '@mt-paas/middleware';
import {
  createSecretBox,
  type LlmConfig,
  parseModelReference,
  providersFor,
  type SecretBox,
  type TenantProviders,
} from '@mt-paas/providers-llm';
import type { SqlExecutor, TenantVectorStore, VectorStore } from '@mt-paas/providers-vector';
import { createVectorStoreFromConfig } from './vector-store-config.js';

/** One tenant's AI providers. */
export interface FrameworkProviders extends TenantProviders {
  /** The tenant's namespace of the configured vector store (`database.vector`). */
  vectorStore: TenantVectorStore;
}

/** Builds and caches what {@link FrameworkProviders} need. */
export interface TenantProvidersFactory {
  forTenant(tenantId: TenantId): Promise<FrameworkProviders>;
  close(): Promise<void>;
}

const TOKEN_METER = 'llm_tokens';

/**
 * Providers per tenant: `custom.llm` (+ the tenant's own overrides) through `@mt-paas/providers-llm`, token
 * usage counted on the pipeline's quota meter (so `llm_tokens` quotas alert and refuse like any other meter,
 * and the usage reaches the ledger and the marketplace with the meter's flush), and one vector store per
 * embedding model from `database.vector`, namespaced per tenant.
 */
export function createTenantProviders(options: {
  config: MtPaasConfig;
  catalog: Catalog;
  pipeline: TenantPipeline;
  env: ConfigEnv;
  usageSink: UsageSink;
  /** pgvector without `database.vector.url`: the catalog's database (its URL, or the embedded PGlite). */
  pgvector?: { connectionString?: string; executor?: SqlExecutor };
}): TenantProvidersFactory {
  const { config, pipeline } = options;
  const stores = new Map<string, VectorStore>();
  const secretBox = secretBoxOf(config);

  function tokenQuota(tenant: Tenant): QuotaLimit | undefined {
    return tenant.entitlements.limits.quotas[TOKEN_METER] ?? config.plans[tenant.plan]?.quotas[TOKEN_METER];
  }

  async function tenantOf(tenantId: TenantId): Promise<Tenant> {
    const tenant = await pipeline.directory.get(tenantId);
    if (tenant === undefined) {
      throw new MtPaasError('TENANT_NOT_FOUND', `Tenant "${tenantId}" does not exist; check the tenant id.`);
    }
    return tenant;
  }

  return {
    async forTenant(tenantId) {
      const tenant = await tenantOf(tenantId);
      const quota = tokenQuota(tenant);
      const meter = pipeline.quotas;
      // With a quota meter the tokens are counted there (and flushed to the usage sink by it); without
      // one they go to the usage sink directly.
      const usageSink: UsageSink =
        meter === undefined || quota === undefined
          ? options.usageSink
          : {
              async record(records: readonly UsageRecord[]) {
                for (const record of records) {
                  await meter.consume(record.tenantId, record.meter, quota, record.quantity);
                }
              },
            };
      const providers = await providersFor(tenant, llmSettingsOf(config), {
        usageSink,
        ...(secretBox === undefined ? {} : { secretBox }),
        env: options.env,
        ...(meter === undefined || quota === undefined || quota.limit === null
          ? {}
          : {
              budget: async (id: TenantId) =>
                (quota.limit ?? 0) - (await meter.usage(id, TOKEN_METER, quota.period)),
            }),
      });
      const dimensions = providers.embeddingModel.dimensions;
      const model = `${providers.embeddingModel.provider}:${providers.embeddingModel.modelId}`;
      const key = `${model}/${dimensions}`;
      let store = stores.get(key);
      if (store === undefined) {
        store = createVectorStoreFromConfig(config.database.vector, {
          dimensions,
          model,
          ...options.pgvector,
        });
        stores.set(key, store);
      }
      return { ...providers, vectorStore: store.forTenant(tenantId) };
    },
    async close() {
      const all = [...stores.values()];
      stores.clear();
      await Promise.all(all.map((store) => store.close()));
    },
  };
}

/**
 * Checks every model `custom.llm` names (`provider:model`, known provider) at startup, so a typo fails
 * `createServiceFramework` instead of the first chat request. A missing API key is no error: the model is
 * skipped for the local provider (the embedded default), as `providersFor` documents.
 */
export function assertLlmSettings(config: MtPaasConfig): void {
  const llm = llmSettingsOf(config);
  const fallbacks = llm.fallback_model === undefined ? [] : [llm.fallback_model].flat();
  const named: Array<[string, string | undefined]> = [
    ['default_model', llm.default_model],
    ...fallbacks.map((model, index): [string, string] => [`fallback_model[${index}]`, model]),
    ['budget_fallback_model', llm.budget_fallback_model],
    ['embedding_model', llm.embedding_model],
    ['reranker_model', llm.reranker_model],
  ];
  for (const [key, model] of named) {
    if (model === undefined) continue;
    try {
      parseModelReference(model);
    } catch (error) {
      if (MtPaasError.isInstance(error)) {
        throw new MtPaasError('CONFIG_INVALID', `custom.llm.${key}: ${error.message}`, {
          details: { key: `custom.llm.${key}` },
        });
      }
      throw error;
    }
  }
}

/** `custom.llm` (validated at startup by the framework's custom schema). */
function llmSettingsOf(config: MtPaasConfig): LlmConfig {
  return ((config.custom as { llm?: LlmConfig }).llm ?? {}) as LlmConfig;
}

/** The secret box of `security.encryption` (`key` + `previous_keys`), when encryption is on. */
export function secretBoxOf(config: MtPaasConfig): SecretBox | undefined {
  const { encryption } = config.security;
  if (!encryption.enabled || encryption.key === undefined) return undefined;
  return createSecretBox({ key: encryption.key, previousKeys: encryption.previousKeys });
}
