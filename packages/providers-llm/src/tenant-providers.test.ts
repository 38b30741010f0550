import { parseTenantId, runWithTenant, type Tenant, type UsageRecord } from '@mt-paas/context';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCooldownTracker } from './fallback.js';
import { createSecretBox } from './secret-box.js';
import {
  encryptTenantApiKey,
  type LlmConfig,
  parseModelReference,
  providersFor,
  providersForCurrentTenant,
  reencryptTenantApiKeys,
} from './tenant-providers.js';
import { jsonFixture, startTestServer, type TestServer } from './test-server.js';

const ENCRYPTION_KEY = 'config-encryption-key-0123456789';
let server: TestServer;
beforeEach(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  await server.close();
});

function tenant(id: string, metadata: Record<string, unknown> = {}): Tenant {
  const now = new Date('2026-01-01T00:00:00Z');
  return {
    id: parseTenantId(id),
    name: id,
    status: 'active',
    plan: 'starter',
    entitlements: { plan: 'starter', features: {}, limits: { rpm: null, quotas: {} } },
    placement: { mode: 'row' },
    metadata,
    createdAt: now,
    updatedAt: now,
  };
}

/** The seed's custom.llm, pointed at the local test server. */
function seedConfig(extra: Record<string, unknown> = {}): LlmConfig {
  return {
    default_model: 'gpt-4',
    fallback_model: 'gpt-3.5-turbo',
    base_urls: { openai: `${server.url}/v1`, anthropic: `${server.url}/v1` },
    max_retries: 0,
    ...extra,
  };
}

/** What @mt-paas/framework builds from security.encryption. */
const secretBox = createSecretBox({ key: ENCRYPTION_KEY });

const platformEnv = { OPENAI_API_KEY: 'sk-platform', ANTHROPIC_API_KEY: 'sk-ant-platform' };

describe('parseModelReference', () => {
  it('reads provider:model and infers bare names', () => {
    expect(parseModelReference('openai:gpt-4o-mini')).toEqual({ provider: 'openai', modelId: 'gpt-4o-mini' });
    expect(parseModelReference('gpt-4')).toEqual({ provider: 'openai', modelId: 'gpt-4' });
    expect(parseModelReference('claude-3-5-haiku-latest')).toEqual({
      provider: 'anthropic',
      modelId: 'claude-3-5-haiku-latest',
    });
    expect(parseModelReference('gemini-2.0-flash')).toEqual({
      provider: 'gemini',
      modelId: 'gemini-2.0-flash',
    });
    expect(parseModelReference('ollama:llama3.2:3b')).toEqual({ provider: 'ollama', modelId: 'llama3.2:3b' });
    expect(() => parseModelReference('mistral:large')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    expect(() => parseModelReference(' ')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});

describe('providersFor', () => {
  it('builds the seed chain (bare "gpt-4" → openai) with the platform key and meters the call', async () => {
    server.on('/v1/chat/completions', { json: jsonFixture('openai-chat.json') });
    const records: UsageRecord[] = [];
    const providers = await providersFor(tenant('univ_8'), seedConfig(), {
      env: platformEnv,
      usageSink: { record: async (batch) => void records.push(...batch) },
    });
    expect(providers.models).toEqual(['openai:gpt-4', 'openai:gpt-3.5-turbo']);
    const result = await providers.languageModel.generate({ prompt: 'What is RLS?' });
    expect(result.model).toBe('openai:gpt-4');
    expect(server.requests[0]?.body).toMatchObject({ model: 'gpt-4' });
    expect(server.requests[0]?.headers.authorization).toBe('Bearer sk-platform');
    expect(records).toEqual([
      expect.objectContaining({
        tenantId: 'univ_8',
        meter: 'llm_tokens',
        quantity: 29,
        attributes: expect.objectContaining({ provider: 'openai', model: 'gpt-4' }),
      }),
    ]);
  });

  it('falls back on 429 to the next provider and skips the failed model during its cooldown', async () => {
    server.on('/v1/chat/completions', {
      status: 429,
      headers: { 'retry-after': '120' },
      json: jsonFixture('openai-error-429.json'),
    });
    server.on('/v1/messages', { json: jsonFixture('anthropic-message.json') });
    const cooldowns = createCooldownTracker();
    const config = seedConfig({
      default_model: 'openai:gpt-4o-mini',
      fallback_model: ['anthropic:claude-3-5-haiku-latest'],
    });
    const providers = await providersFor(tenant('univ_8'), config, { env: platformEnv, cooldowns });
    expect((await providers.languageModel.generate({ prompt: 'hi' })).model).toBe(
      'anthropic:claude-3-5-haiku-latest',
    );
    const again = await providersFor(tenant('univ_8'), config, { env: platformEnv, cooldowns });
    await again.languageModel.generate({ prompt: 'hi' });
    expect(server.requests.map((request) => request.path)).toEqual([
      '/v1/chat/completions',
      '/v1/messages',
      '/v1/messages',
    ]);
  });

  it('falls back on a 5xx and on a timeout of the default model, and says which models failed', async () => {
    server.on('/v1/chat/completions', { status: 500, json: jsonFixture('openai-error-500.json') });
    server.on('/v1/messages', { json: jsonFixture('anthropic-message.json') });
    const events: { from: string; to: string | undefined; tenantId: string }[] = [];
    const config = seedConfig({
      default_model: 'openai:gpt-4o-mini',
      fallback_model: 'anthropic:claude-3-5-haiku-latest',
    });
    const onFallback = (event: { from: string; to: string | undefined; tenantId: string }) =>
      events.push({ from: event.from, to: event.to, tenantId: event.tenantId });
    const afterServerError = await providersFor(tenant('univ_8'), config, {
      env: platformEnv,
      cooldowns: createCooldownTracker(),
      onFallback,
    });
    expect((await afterServerError.languageModel.generate({ prompt: 'hi' })).model).toBe(
      'anthropic:claude-3-5-haiku-latest',
    );

    server.on('/v1/chat/completions', { hang: true });
    const afterTimeout = await providersFor(
      tenant('univ_8'),
      { ...config, timeout_ms: 1_000 },
      {
        env: platformEnv,
        cooldowns: createCooldownTracker(),
        onFallback,
      },
    );
    expect((await afterTimeout.languageModel.generate({ prompt: 'hi' })).model).toBe(
      'anthropic:claude-3-5-haiku-latest',
    );
    expect(events).toEqual([
      { from: 'openai:gpt-4o-mini', to: 'anthropic:claude-3-5-haiku-latest', tenantId: 'univ_8' },
      { from: 'openai:gpt-4o-mini', to: 'anthropic:claude-3-5-haiku-latest', tenantId: 'univ_8' },
    ]);
    expect(server.requests.map((request) => request.path)).toEqual([
      '/v1/chat/completions',
      '/v1/messages',
      '/v1/chat/completions',
      '/v1/messages',
    ]);
  });

  it('reports every model of the chain when all of them fail', async () => {
    server.on('/v1/chat/completions', { status: 503, json: jsonFixture('openai-error-500.json') });
    server.on('/v1/messages', { status: 529, json: jsonFixture('anthropic-error-529.json') });
    const providers = await providersFor(
      tenant('univ_8'),
      seedConfig({
        default_model: 'openai:gpt-4o-mini',
        fallback_model: 'anthropic:claude-3-5-haiku-latest',
      }),
      { env: platformEnv, cooldowns: createCooldownTracker() },
    );
    await expect(providers.languageModel.generate({ prompt: 'hi' })).rejects.toMatchObject({
      code: 'PROVIDER_UNAVAILABLE',
      details: {
        attempts: [
          { model: 'openai:gpt-4o-mini', code: 'PROVIDER_UNAVAILABLE' },
          { model: 'anthropic:claude-3-5-haiku-latest', code: 'PROVIDER_UNAVAILABLE' },
        ],
      },
    });
  });

  it('answers with the local provider when no key is configured anywhere (the embedded default)', async () => {
    const providers = await providersFor(tenant('univ_8'), seedConfig(), { env: {} });
    expect(providers.models).toEqual(['local:extractive']);
    expect(providers.skipped.map((entry) => entry.model)).toEqual(['openai:gpt-4', 'openai:gpt-3.5-turbo']);
    const result = await providers.languageModel.generate({
      system: 'Quizzes close at midnight.',
      prompt: 'When do quizzes close?',
    });
    expect(result.text).toBe('Quizzes close at midnight.');
    expect(server.requests).toHaveLength(0);
    await expect(
      providersFor(tenant('univ_8'), seedConfig(), { env: {}, whenNoKey: 'error' }),
    ).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
  });

  it('uses the tenant’s own encrypted key, also after a key rotation', async () => {
    server.on('/v1/chat/completions', { json: jsonFixture('openai-chat.json') });
    const box = createSecretBox({ key: ENCRYPTION_KEY });
    const stored = encryptTenantApiKey(box, parseTenantId('univ_8'), 'openai', 'sk-tenant-own');
    const byok = tenant('univ_8', { llm: { api_keys: { openai: stored } } });
    await (await providersFor(byok, seedConfig(), { env: platformEnv, secretBox })).languageModel.generate({
      prompt: 'hi',
    });
    expect(server.requests[0]?.headers.authorization).toBe('Bearer sk-tenant-own');

    const rotated = createSecretBox({
      key: 'brand-new-encryption-key-987654',
      previousKeys: [ENCRYPTION_KEY],
    });
    await (
      await providersFor(byok, seedConfig(), { env: platformEnv, secretBox: rotated })
    ).languageModel.generate({
      prompt: 'hi',
    });
    expect(server.requests[1]?.headers.authorization).toBe('Bearer sk-tenant-own');

    const newBox = createSecretBox({
      key: 'brand-new-encryption-key-987654',
      previousKeys: [ENCRYPTION_KEY],
    });
    const updated = reencryptTenantApiKeys(newBox, parseTenantId('univ_8'), { api_keys: { openai: stored } });
    expect(updated.api_keys?.openai).not.toBe(stored);
    expect(newBox.needsReencryption(updated.api_keys!.openai!)).toBe(false);

    // Without a secret box a tenant's own key is refused, never sent undecrypted or swapped for the platform's.
    await expect(providersFor(byok, seedConfig(), { env: platformEnv })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('security.encryption.key'),
    });

    // The ciphertext of one tenant does not work for another.
    const thief = tenant('univ_9', { llm: { api_keys: { openai: stored } } });
    await expect(providersFor(thief, seedConfig(), { env: platformEnv, secretBox })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
  });

  it('applies tenant overrides from metadata.llm, then the overrides store', async () => {
    const fromMetadata = await providersFor(
      tenant('univ_8', { llm: { default_model: 'anthropic:claude-3-5-haiku-latest', fallback_model: [] } }),
      seedConfig(),
      { env: platformEnv },
    );
    expect(fromMetadata.models).toEqual(['anthropic:claude-3-5-haiku-latest']);
    const fromStore = await providersFor(
      tenant('univ_8', { llm: { default_model: 'anthropic:claude-3-5-haiku-latest' } }),
      seedConfig(),
      {
        env: platformEnv,
        overrides: { get: () => ({ default_model: 'local:extractive', fallback_model: [] }) },
      },
    );
    expect(fromStore.models).toEqual(['local:extractive']);
  });

  it('switches to the budget fallback model when the tenant budget is used up', async () => {
    const providers = await providersFor(
      tenant('univ_8'),
      seedConfig({ budget_fallback_model: 'local:extractive' }),
      {
        env: platformEnv,
        budget: () => 0,
      },
    );
    const result = await providers.languageModel.generate({
      system: 'Labs open at ten.',
      prompt: 'When do labs open?',
    });
    expect(result.model).toBe('local:extractive');
    expect(server.requests).toHaveLength(0);
    const strict = await providersFor(tenant('univ_8'), seedConfig(), { env: platformEnv, budget: () => 0 });
    await expect(strict.languageModel.generate({ prompt: 'hi' })).rejects.toMatchObject({
      code: 'QUOTA_EXCEEDED',
    });
  });

  it('defaults to local embeddings and reranker, and meters embeddings', async () => {
    const records: UsageRecord[] = [];
    const providers = await providersFor(tenant('univ_8'), seedConfig({ embedding_dimensions: 32 }), {
      env: {},
      usageSink: { record: async (batch) => void records.push(...batch) },
    });
    expect(providers.embeddingModel.dimensions).toBe(32);
    await providers.embeddingModel.embed(['hello tenant']);
    expect(records[0]).toMatchObject({ meter: 'llm_tokens', quantity: 2 });
    const ranked = await providers.reranker.rerank('tenant', ['cafeteria', 'tenant isolation'], 1);
    expect(ranked.results[0]?.index).toBe(1);
  });

  it('refuses a configured embedding model without a key instead of switching to local vectors', async () => {
    const config = seedConfig({
      embedding_model: 'openai:text-embedding-3-small',
      embedding_dimensions: 1536,
    });
    await expect(providersFor(tenant('univ_8'), config, { env: {} })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('remove embedding_model'),
      details: { model: 'openai:text-embedding-3-small' },
    });
    const withKey = await providersFor(tenant('univ_8'), config, { env: platformEnv });
    expect(withKey.embeddingModel).toMatchObject({ provider: 'openai', modelId: 'text-embedding-3-small' });
  });

  it('never sends a platform key to a base URL a tenant chose', async () => {
    const sneaky = tenant('univ_8', { llm: { base_urls: { openai: 'http://attacker.example/v1' } } });
    await expect(
      providersFor(sneaky, seedConfig(), { env: platformEnv, allowTenantBaseURLs: true }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    // Without allowTenantBaseURLs the tenant's URL is ignored.
    const providers = await providersFor(sneaky, seedConfig(), { env: platformEnv });
    expect(providers.models[0]).toBe('openai:gpt-4');
  });

  it('rejects invalid tenant overrides with CONFIG_INVALID', async () => {
    await expect(
      providersFor(tenant('univ_8', { llm: { api_keys: { openai: 'sk-plaintext' } } }), seedConfig(), {
        env: platformEnv,
      }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('api_keys.openai') });
  });

  it('reads the tenant of the current context', async () => {
    const record = tenant('univ_8', { llm: { default_model: 'local:extractive', fallback_model: [] } });
    const providers = await runWithTenant({ tenant: record }, () => providersForCurrentTenant(seedConfig()));
    expect(providers.tenantId).toBe('univ_8');
    await expect(providersForCurrentTenant(seedConfig())).rejects.toMatchObject({
      code: 'TENANT_CONTEXT_MISSING',
    });
  });
});
