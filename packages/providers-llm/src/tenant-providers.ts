import { MtPaasError, type Tenant, type TenantId, tryCurrentTenant, type UsageSink } from '@mt-paas/context';
import { z } from 'zod';
import { createAnthropic } from './anthropic-provider.js';
import {
  type CooldownTracker,
  createCooldownTracker,
  createFallbackLanguageModel,
  type FallbackEvent,
} from './fallback.js';
import { createGemini } from './gemini-provider.js';
import type { HttpProviderOptions } from './http.js';
import { createLocalProvider } from './local-provider.js';
import { type TokenBudget, withEmbeddingMetering, withTokenMetering } from './metering.js';
import { createOpenAI, createOpenAICompatible } from './openai-provider.js';
import { createCohereReranker, createTeiReranker } from './rerank-providers.js';
import type { SecretBox } from './secret-box.js';
import type { EmbeddingModel, LanguageModel, RerankingModel } from './spec.js';

/** A provider and a model id, parsed from `"openai:gpt-4o-mini"`. */
export interface ModelReference {
  provider: string;
  modelId: string;
}

/**
 * Parses a model reference. `provider:model` names the provider (the model id may contain
 * further colons: `ollama:llama3.2:3b`). A bare id is inferred: `claude-*` → anthropic,
 * `gemini-*` → gemini, anything else → openai (the seed's `"gpt-4"`).
 */
export function parseModelReference(value: string, knownProviders?: Iterable<string>): ModelReference {
  const trimmed = value.trim();
  if (trimmed === '') {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'An empty model name was configured; use "provider:model", e.g. "openai:gpt-4o-mini".',
    );
  }
  const colon = trimmed.indexOf(':');
  if (colon > 0) {
    const provider = trimmed.slice(0, colon).toLowerCase();
    const known = new Set(knownProviders ?? BUILT_IN_PROVIDERS);
    if (known.has(provider)) return { provider, modelId: trimmed.slice(colon + 1) };
    if (/^[a-z][a-z0-9_-]*$/.test(provider)) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `Unknown LLM provider "${provider}" in "${trimmed}"; use one of ${[...known].join(', ')} (for an Ollama tag write "ollama:${trimmed}"), or register the provider.`,
      );
    }
  }
  if (/^claude-/i.test(trimmed)) return { provider: 'anthropic', modelId: trimmed };
  if (/^(?:models\/)?gemini-/i.test(trimmed)) return { provider: 'gemini', modelId: trimmed };
  return { provider: 'openai', modelId: trimmed };
}

/** What a provider registration builds models from. */
export interface ProviderSettings {
  /** The key to use (a tenant's own key, an explicit platform key, or the env var's value). */
  apiKey: string | undefined;
  /** A base URL override from the config, if any. */
  baseURL: string | undefined;
  /** Retries, timeout, fetch. */
  http: HttpProviderOptions;
}

/** The models a registered provider can build (each optional). */
export interface ProviderInstance {
  languageModel?(modelId: string): LanguageModel;
  embedding?(modelId: string, options?: { dimensions?: number }): EmbeddingModel;
  reranker?(modelId: string): RerankingModel;
}

/** A provider `providersFor` can select by name. */
export interface ProviderRegistration {
  /** Environment variables holding the platform key, first found wins. */
  envKeys: readonly string[];
  /** Without a key the provider is unusable (skipped, see {@link ProvidersForOptions.whenNoKey}). */
  requiresKey: boolean;
  create(settings: ProviderSettings): ProviderInstance;
}

function compatible(name: string, defaultBaseURL: string): ProviderRegistration {
  return {
    envKeys: [`${name.toUpperCase()}_API_KEY`],
    requiresKey: false,
    create: ({ apiKey, baseURL, http }) =>
      createOpenAICompatible({
        ...http,
        name,
        baseURL: baseURL ?? defaultBaseURL,
        ...(apiKey === undefined ? {} : { apiKey }),
      }),
  };
}

/** The providers `providersFor` knows without configuration. */
export const BUILT_IN_PROVIDERS = [
  'openai',
  'anthropic',
  'gemini',
  'local',
  'cohere',
  'tei',
  'ollama',
  'vllm',
  'lmstudio',
] as const;

function builtInRegistry(): Record<string, ProviderRegistration> {
  return {
    openai: {
      envKeys: ['OPENAI_API_KEY'],
      requiresKey: true,
      create: ({ apiKey, baseURL, http }) =>
        createOpenAI({
          ...http,
          ...(apiKey === undefined ? {} : { apiKey }),
          ...(baseURL === undefined ? {} : { baseURL }),
        }),
    },
    anthropic: {
      envKeys: ['ANTHROPIC_API_KEY'],
      requiresKey: true,
      create: ({ apiKey, baseURL, http }) =>
        createAnthropic({
          ...http,
          ...(apiKey === undefined ? {} : { apiKey }),
          ...(baseURL === undefined ? {} : { baseURL }),
        }),
    },
    gemini: {
      envKeys: ['GEMINI_API_KEY', 'GOOGLE_GENERATIVE_AI_API_KEY'],
      requiresKey: true,
      create: ({ apiKey, baseURL, http }) =>
        createGemini({
          ...http,
          ...(apiKey === undefined ? {} : { apiKey }),
          ...(baseURL === undefined ? {} : { baseURL }),
        }),
    },
    cohere: {
      envKeys: ['COHERE_API_KEY', 'CO_API_KEY'],
      requiresKey: true,
      create: ({ apiKey, baseURL, http }) => ({
        reranker: (modelId) =>
          createCohereReranker({
            ...http,
            modelId,
            ...(apiKey === undefined ? {} : { apiKey }),
            ...(baseURL === undefined ? {} : { baseURL }),
          }),
      }),
    },
    tei: {
      envKeys: ['TEI_API_KEY'],
      requiresKey: false,
      create: ({ apiKey, baseURL, http }) => ({
        reranker: (modelId) =>
          createTeiReranker({
            ...http,
            modelId,
            ...(apiKey === undefined ? {} : { apiKey }),
            ...(baseURL === undefined ? {} : { baseURL }),
          }),
      }),
    },
    local: {
      envKeys: [],
      requiresKey: false,
      create: () => {
        const local = createLocalProvider();
        return { languageModel: local.languageModel, embedding: local.embedding, reranker: local.reranker };
      },
    },
    ollama: compatible('ollama', 'http://127.0.0.1:11434/v1'),
    vllm: compatible('vllm', 'http://127.0.0.1:8000/v1'),
    lmstudio: compatible('lmstudio', 'http://127.0.0.1:1234/v1'),
  };
}

const modelList = z.union([z.string().min(1), z.array(z.string().min(1))]);

/** Schema of `custom.llm` in `mt-paas.yaml` (unknown keys are kept). */
export const llmConfigSchema = z.looseObject({
  /** The model that answers first: `"openai:gpt-4o-mini"`, or a bare `"gpt-4"` (openai). */
  default_model: z.string().min(1).optional(),
  /** Tried in order when the default fails with 429 / 5xx / timeout. */
  fallback_model: modelList.optional(),
  /** Answers when the tenant's token budget is used up (instead of `QUOTA_EXCEEDED`). */
  budget_fallback_model: z.string().min(1).optional(),
  /** @default 'local:hash' */
  embedding_model: z.string().min(1).optional(),
  /** Vector length for embedding models whose size is not known (or to shorten text-embedding-3). */
  embedding_dimensions: z.number().int().positive().optional(),
  /** @default 'local:lexical' */
  reranker_model: z.string().min(1).optional(),
  /** Base URL per provider (`ollama: http://gpu-box:11434/v1`). */
  base_urls: z.record(z.string(), z.url()).optional(),
  /** Seconds a failed model is skipped. @default 30 */
  cooldown_seconds: z.number().nonnegative().optional(),
  /** Per-request timeout in milliseconds. @default 60000 */
  timeout_ms: z.number().int().positive().optional(),
  /** Retries of one request. @default 2 */
  max_retries: z.number().int().nonnegative().optional(),
});

/** `custom.llm` of `mt-paas.yaml`. */
export type LlmConfig = z.infer<typeof llmConfigSchema>;

/** A tenant's own LLM settings: `tenant.metadata.llm` or the overrides store. */
export const tenantLlmOverridesSchema = z.looseObject({
  default_model: z.string().min(1).optional(),
  fallback_model: modelList.optional(),
  embedding_model: z.string().min(1).optional(),
  embedding_dimensions: z.number().int().positive().optional(),
  reranker_model: z.string().min(1).optional(),
  /** The tenant's own API keys per provider, encrypted with {@link encryptTenantApiKey}. */
  api_keys: z.record(z.string(), z.string().startsWith('mtp1:')).optional(),
  /** Base URLs per provider; honoured only with `allowTenantBaseURLs` and the tenant's own key. */
  base_urls: z.record(z.string(), z.url()).optional(),
});

/** A tenant's own LLM settings. */
export type TenantLlmOverrides = z.infer<typeof tenantLlmOverridesSchema>;

/** Looks up tenant LLM overrides kept outside the tenant record. */
export interface TenantOverridesStore {
  get(tenantId: TenantId): Promise<TenantLlmOverrides | undefined> | TenantLlmOverrides | undefined;
}

/** Options of {@link providersFor}. */
export interface ProvidersForOptions {
  /** Token usage is recorded here (`llm_tokens`). */
  usageSink?: UsageSink;
  /** Remaining `llm_tokens` of the tenant, checked before every call. */
  budget?: TokenBudget;
  /** Overrides kept outside `tenant.metadata.llm`; merged over it. */
  overrides?: TenantOverridesStore;
  /** Extra or replaced providers, by name. */
  providers?: Record<string, ProviderRegistration>;
  /** Platform keys per provider (instead of environment variables). */
  apiKeys?: Record<string, string>;
  /** Environment to read platform keys from. @default process.env */
  env?: Record<string, string | undefined>;
  /** Cooldown state shared by every tenant. @default one tracker per process */
  cooldowns?: CooldownTracker;
  /** Transport options of the HTTP providers (merged under `timeout_ms` / `max_retries`). */
  http?: HttpProviderOptions;
  /**
   * Decrypts tenant keys (`createSecretBox({ key, previousKeys })`; `@mt-paas/framework` builds it from
   * `security.encryption`). Without it a tenant with its own key is refused with `CONFIG_INVALID`.
   */
  secretBox?: SecretBox;
  /**
   * What happens to a configured model whose provider has no key: `'skip'` it (and answer with
   * the local provider when nothing is left — the embedded default), or `'error'`. @default 'skip'
   */
  whenNoKey?: 'skip' | 'error';
  /** Honour `base_urls` from tenant overrides (only ever with the tenant's own key). @default false */
  allowTenantBaseURLs?: boolean;
  /** Hears fallbacks (for logs and metrics). */
  onFallback?: (event: FallbackEvent & { tenantId: TenantId }) => void;
}

/** The models one tenant uses, metered and budgeted for it. */
export interface TenantProviders {
  tenantId: TenantId;
  /** The fallback chain (default, then fallbacks), metered and budget-checked. */
  languageModel: LanguageModel;
  /**
   * The embedding model, metered. Never falls back: vectors of two models do not mix, so a
   * configured `embedding_model` whose provider has no key is refused with `CONFIG_INVALID`.
   */
  embeddingModel: EmbeddingModel;
  reranker: RerankingModel;
  /** `provider:model` of the chain, in order. */
  models: string[];
  /** Configured models left out, and why (no key). */
  skipped: { model: string; reason: string }[];
}

const sharedCooldowns = createCooldownTracker();

function secretContext(tenantId: TenantId, provider: string): string {
  return `${tenantId}/${provider}`;
}

/** Encrypts a tenant's own API key for `tenant.metadata.llm.api_keys[provider]`. */
export function encryptTenantApiKey(
  box: SecretBox,
  tenantId: TenantId,
  provider: string,
  apiKey: string,
): string {
  return box.encrypt(apiKey, secretContext(tenantId, provider));
}

/**
 * Re-encrypts every stored tenant key made with a retired key; returns the updated overrides
 * (same object when nothing changed) — save them back after a key rotation.
 */
export function reencryptTenantApiKeys(
  box: SecretBox,
  tenantId: TenantId,
  overrides: TenantLlmOverrides,
): TenantLlmOverrides {
  const keys = overrides.api_keys;
  if (keys === undefined) return overrides;
  let changed = false;
  const next: Record<string, string> = {};
  for (const [provider, ciphertext] of Object.entries(keys)) {
    if (box.needsReencryption(ciphertext)) {
      next[provider] = box.reencrypt(ciphertext, secretContext(tenantId, provider));
      changed = true;
    } else next[provider] = ciphertext;
  }
  return changed ? { ...overrides, api_keys: next } : overrides;
}

function parseOverrides(value: unknown, tenantId: TenantId, source: string): TenantLlmOverrides {
  if (value === undefined || value === null) return {};
  const parsed = tenantLlmOverridesSchema.safeParse(value);
  if (!parsed.success) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `The LLM overrides of tenant "${tenantId}" (${source}) are invalid: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}. Fix them in the tenant record.`,
      { details: { tenantId } },
    );
  }
  return parsed.data;
}

/**
 * The language model chain, embedding model and reranker of one tenant, from the LLM settings (what
 * `custom.llm` of `mt-paas.yaml` holds; `@mt-paas/framework` passes it) merged with the tenant's overrides (`tenant.metadata.llm`, then the overrides store):
 * `default_model` then `fallback_model`(s) as a fallback chain with cooldown; the tenant's own
 * keys (decrypted with `options.secretBox`) over platform keys; every call budget-checked
 * and metered on `llm_tokens`. With no key anywhere it answers with the local provider.
 *
 * @example
 * const { languageModel } = await providersFor(tenant, { default_model: 'openai:gpt-4o-mini' }, { usageSink, budget });
 * const { text } = await languageModel.generate({ system: context, prompt: question });
 */
export async function providersFor(
  tenant: Tenant,
  settings: LlmConfig = {},
  options: ProvidersForOptions = {},
): Promise<TenantProviders> {
  const tenantId = tenant.id;
  const configParsed = llmConfigSchema.safeParse(settings);
  if (!configParsed.success) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `The LLM settings (custom.llm) are invalid: ${configParsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}; fix custom.llm in mt-paas.yaml.`,
    );
  }
  const base = configParsed.data;
  const fromMetadata = parseOverrides(tenant.metadata.llm, tenantId, 'metadata.llm');
  const fromStore = parseOverrides(await options.overrides?.get(tenantId), tenantId, 'overrides store');
  const overrides: TenantLlmOverrides = {
    ...fromMetadata,
    ...fromStore,
    api_keys: { ...fromMetadata.api_keys, ...fromStore.api_keys },
    base_urls: { ...fromMetadata.base_urls, ...fromStore.base_urls },
  };
  const registry = { ...builtInRegistry(), ...options.providers };
  const env = options.env ?? process.env;
  const http: HttpProviderOptions = {
    ...options.http,
    ...(base.timeout_ms === undefined ? {} : { timeoutMs: base.timeout_ms }),
    ...(base.max_retries === undefined ? {} : { maxRetries: base.max_retries }),
  };
  const secretBox = options.secretBox;
  const instances = new Map<string, { instance: ProviderInstance; keyOwner: string } | { missing: string }>();

  function instanceFor(
    provider: string,
  ): { instance: ProviderInstance; keyOwner: string } | { missing: string } {
    const cached = instances.get(provider);
    if (cached !== undefined) return cached;
    const registration = registry[provider];
    if (registration === undefined) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `Unknown LLM provider "${provider}"; use one of ${Object.keys(registry).join(', ')}, or register it in the providers option.`,
      );
    }
    let apiKey: string | undefined;
    let keyOwner = 'platform';
    const stored = overrides.api_keys?.[provider];
    if (stored !== undefined) {
      if (secretBox === undefined) {
        throw new MtPaasError(
          'CONFIG_INVALID',
          `Tenant "${tenantId}" has its own ${provider} key but no secretBox was given to decrypt it; set security.encryption.key (or pass createSecretBox({ key })).`,
        );
      }
      apiKey = secretBox.decrypt(stored, secretContext(tenantId, provider));
      keyOwner = tenantId;
    } else {
      apiKey =
        options.apiKeys?.[provider] ?? registration.envKeys.map((name) => env[name]).find((value) => value);
    }
    let baseURL = base.base_urls?.[provider];
    const tenantBaseURL = overrides.base_urls?.[provider];
    if (tenantBaseURL !== undefined && options.allowTenantBaseURLs === true) {
      // Never send a platform key to a URL the tenant chose.
      if (keyOwner !== tenantId && registration.requiresKey) {
        throw new MtPaasError(
          'CONFIG_INVALID',
          `Tenant "${tenantId}" sets a ${provider} base URL without its own ${provider} key; store the tenant's key too.`,
        );
      }
      baseURL = tenantBaseURL;
      keyOwner = tenantId;
    }
    const entry =
      registration.requiresKey && (apiKey === undefined || apiKey === '')
        ? { missing: `no ${provider} key (set ${registration.envKeys.join(' or ')} or store a tenant key)` }
        : { instance: registration.create({ apiKey, baseURL, http }), keyOwner };
    instances.set(provider, entry);
    return entry;
  }

  const skipped: { model: string; reason: string }[] = [];
  const known = Object.keys(registry);

  function resolve<T>(
    reference: string,
    kind: 'languageModel' | 'embedding' | 'reranker',
    build: (instance: ProviderInstance, modelId: string) => T | undefined,
  ): { model: T; name: string; keyOwner: string } | undefined {
    const { provider, modelId } = parseModelReference(reference, known);
    const name = `${provider}:${modelId}`;
    const entry = instanceFor(provider);
    if ('missing' in entry) {
      if (kind === 'embedding') {
        // Vectors of two models do not mix: answering with the local model would silently fill
        // (or search) the tenant's index with vectors that match nothing already stored.
        throw new MtPaasError(
          'CONFIG_INVALID',
          `Embedding model "${name}" cannot be used: ${entry.missing}. Embeddings never fall back to another model (its vectors would not match those already stored); set the key, or remove embedding_model to use the local hash embeddings.`,
          { details: { tenantId, model: name } },
        );
      }
      if (options.whenNoKey === 'error') {
        throw new MtPaasError('CONFIG_INVALID', `Model "${name}" cannot be used: ${entry.missing}.`, {
          details: { tenantId, model: name },
        });
      }
      skipped.push({ model: name, reason: entry.missing });
      return undefined;
    }
    const model = build(entry.instance, modelId);
    if (model === undefined) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `Provider "${provider}" has no ${kind} ("${name}" is configured); choose a model of a provider that has one in custom.llm or the tenant overrides (embeddings: openai, gemini, ollama, vllm, lmstudio, local; rerankers: cohere, tei, local).`,
      );
    }
    return { model, name, keyOwner: entry.keyOwner };
  }

  const defaultModel = overrides.default_model ?? base.default_model ?? 'local:extractive';
  const fallbackSetting = overrides.fallback_model ?? base.fallback_model ?? [];
  const references = [
    defaultModel,
    ...(typeof fallbackSetting === 'string' ? [fallbackSetting] : fallbackSetting),
  ];
  const chain: { model: LanguageModel; name: string; keyOwner: string }[] = [];
  for (const reference of references) {
    const resolved = resolve(reference, 'languageModel', (instance, id) => instance.languageModel?.(id));
    if (resolved !== undefined && !chain.some((entry) => entry.name === resolved.name)) chain.push(resolved);
  }
  if (chain.length === 0) {
    chain.push({
      model: createLocalProvider().languageModel('extractive'),
      name: 'local:extractive',
      keyOwner: 'platform',
    });
  }
  const keyOwners = new Map(chain.map((entry) => [entry.model, entry.keyOwner]));
  const fallback = createFallbackLanguageModel(
    chain.map((entry) => entry.model),
    {
      cooldowns: options.cooldowns ?? sharedCooldowns,
      cooldownMs: (base.cooldown_seconds ?? 30) * 1000,
      // A tenant's own key has its own rate limits: its cooldown is its own.
      cooldownKey: (model) => `${keyOwners.get(model) ?? 'platform'}/${model.provider}:${model.modelId}`,
      ...(options.onFallback === undefined
        ? {}
        : { onFallback: (event: FallbackEvent) => options.onFallback?.({ ...event, tenantId }) }),
    },
  );

  const budgetReference = base.budget_fallback_model;
  const budgetFallback =
    budgetReference === undefined
      ? undefined
      : resolve(budgetReference, 'languageModel', (instance, id) => instance.languageModel?.(id))?.model;
  const metering = {
    tenantId,
    ...(options.usageSink === undefined ? {} : { usageSink: options.usageSink }),
    ...(options.budget === undefined ? {} : { budget: options.budget }),
  };

  const dimensions = overrides.embedding_dimensions ?? base.embedding_dimensions;
  const embeddingReference = overrides.embedding_model ?? base.embedding_model ?? 'local:hash';
  const embedding = resolve(embeddingReference, 'embedding', (instance, id) =>
    instance.embedding?.(id, dimensions === undefined ? {} : { dimensions }),
  )!.model;
  const rerankerReference = overrides.reranker_model ?? base.reranker_model ?? 'local:lexical';
  const reranker =
    resolve(rerankerReference, 'reranker', (instance, id) => instance.reranker?.(id))?.model ??
    createLocalProvider().reranker();

  return {
    tenantId,
    languageModel: withTokenMetering(fallback, {
      ...metering,
      ...(budgetFallback === undefined ? {} : { budgetFallback }),
    }),
    embeddingModel: withEmbeddingMetering(embedding, metering),
    reranker,
    models: chain.map((entry) => entry.name),
    skipped,
  };
}

/**
 * {@link providersFor} for the tenant of the current context (`runWithTenant`; the request
 * pipeline sets it). The context must carry the tenant record.
 */
export async function providersForCurrentTenant(
  settings: LlmConfig = {},
  options: ProvidersForOptions = {},
): Promise<TenantProviders> {
  const context = tryCurrentTenant();
  if (context?.tenant === undefined) {
    throw new MtPaasError(
      'TENANT_CONTEXT_MISSING',
      context === undefined
        ? 'No tenant context: call providersForCurrentTenant() inside runWithTenant(), or use providersFor(tenant, settings).'
        : `The tenant context of "${context.tenantId}" carries no tenant record; pass { tenant } to runWithTenant(), or use providersFor(tenant, settings).`,
    );
  }
  return providersFor(context.tenant, settings, options);
}
