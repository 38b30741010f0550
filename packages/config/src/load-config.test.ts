// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${VAR} is the config syntax these tests exercise
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { getConfigIssues } from './config-error.js';
import { findConfigFiles, loadConfig, resolveEnvironment } from './load-config.js';
import { mtPaasConfigSchema } from './schema.js';
import { knownKeysAt } from './suggest.js';

const fixtures = fileURLToPath(new URL('./__fixtures__/', import.meta.url));
const seed = join(fixtures, 'seed-001.yaml');
const example = fileURLToPath(new URL('../../../templates/mt-paas.example.yaml', import.meta.url));
const seedEnv = {
  MARKETPLACE_API_KEY: 'mk_live_123',
  JWT_SECRET: 'jwt-secret-value',
  AES_SECRET_KEY: '0123456789abcdef0123456789abcdef',
};

async function issuesOf(run: () => Promise<unknown>) {
  try {
    await run();
  } catch (error) {
    return getConfigIssues(error);
  }
  throw new Error('expected the config to be rejected');
}

let directory: string;
beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'mt-paas-config-'));
});
afterEach(() => {
  rmSync(directory, { recursive: true, force: true });
});

describe('the seed 001 sample config', () => {
  it('parses unchanged, with its ${…} variables set', async () => {
    const config = await loadConfig({ path: seed, env: seedEnv });
    expect(config.service).toEqual({
      id: 'keli_tutor',
      name: 'KELI TUTOR',
      version: '1.0.0',
      description: 'AI 기반 학습 튜터',
    });
    expect(config.marketplace).toMatchObject({
      enabled: true,
      apiUrl: 'https://market.k-university.ai/api/v1',
      apiKey: 'mk_live_123',
      heartbeatIntervalSeconds: 60,
      subscriptionCheck: true,
      gracePeriodHours: 24,
    });
    expect(config.isolation.mode).toBe('database');
    expect(config.isolation.docker).toEqual({
      portRangeStart: 10200,
      portRangeSize: 100,
      composeTemplate: join(fixtures, 'templates/docker-compose.template.yml'),
    });
    expect(config.database.central).toEqual({
      url: 'postgresql://localhost:5432/mt_paas_central',
      poolSize: 10,
    });
    expect(config.database.tenant.urlTemplate).toBe('postgresql://localhost:5432/tenant_{tenant_id}');
    expect(config.database.tenant.poolSizePerTenant).toBe(5);
    expect(config.database.vector).toEqual({
      type: 'qdrant',
      url: 'http://localhost:6333',
      collectionPrefix: 'tenant_',
    });
    expect(config.tenantIdentification.methods).toEqual([
      { type: 'header', name: 'X-Tenant-ID' },
      { type: 'subdomain', extractPattern: '^([^.]+)' },
      { type: 'jwt_claim', claimName: 'tenant_id' },
      { type: 'query_param', name: 'tenant_id' },
    ]);
    expect(config.auth.jwt).toMatchObject({
      enabled: true,
      secret: 'jwt-secret-value',
      algorithm: 'HS256',
      expiryHours: 24,
    });
    expect(config.auth.marketplaceSso).toEqual({ enabled: true, callbackUrl: '/auth/marketplace/callback' });
    expect(config.features).toEqual({
      controlledBySubscription: true,
      defaults: {
        ai_chat: true,
        file_upload: true,
        rag: false,
        discussion: false,
        quiz: false,
        api_integration: false,
      },
    });
    expect(config.security).toEqual({
      crossTenantAudit: true,
      encryption: { enabled: true, key: seedEnv.AES_SECRET_KEY, previousKeys: [] },
      rateLimit: { enabled: true, defaultRpm: 60 },
    });
    expect(config.logging).toEqual({
      level: 'info',
      activityLog: { enabled: true, endpoint: 'https://lrs.k-university.ai/xapi' },
      usageReport: { enabled: true, intervalMinutes: 5 },
    });
    expect(config.custom).toEqual({
      llm: { default_model: 'gpt-4', fallback_model: 'gpt-3.5-turbo' },
      rag: { chunk_size: 500, overlap: 50 },
    });
    expect(Object.keys(config.plans)).toEqual(['free', 'starter', 'professional', 'enterprise']);
  });

  it('reports the three unset variables of the seed at once', async () => {
    const issues = await issuesOf(() => loadConfig({ path: seed, env: {} }));
    expect(issues.map((issue) => [issue.variable, issue.path, issue.line, issue.column])).toEqual([
      ['MARKETPLACE_API_KEY', 'marketplace.api_key', 17, 12],
      ['JWT_SECRET', 'auth.jwt.secret', 82, 13],
      ['AES_SECRET_KEY', 'security.encryption.key', 117, 10],
    ]);
    expect(issues.every((issue) => issue.file === seed)).toBe(true);
  });

  it('merges the dev overlay (seed-001.dev.yaml) over it', async () => {
    const config = await loadConfig({ path: seed, env: seedEnv, environment: 'dev' });
    expect(config.database.central).toEqual({
      url: 'postgresql://localhost:5432/mt_paas_central_dev',
      poolSize: 10,
    });
    expect(config.database.tenant.urlTemplate).toBe('postgresql://localhost:5432/tenant_dev_{tenant_id}');
    expect(config.database.tenant.poolSizePerTenant).toBe(5);
    expect(config.marketplace.apiUrl).toBe('http://localhost:8505/api/v1');
    expect(config.marketplace.apiKey).toBe('mk_live_123');
    expect(config.logging.level).toBe('debug');
    expect(config.logging.activityLog.endpoint).toBe('https://lrs.k-university.ai/xapi');
  });

  it('merges the prod overlay, found through NODE_ENV=production', async () => {
    const config = await loadConfig({ path: seed, env: { ...seedEnv, NODE_ENV: 'production' } });
    expect(config.database.central).toEqual({
      url: 'postgresql://db.k-university.ai:5432/mt_paas_central',
      poolSize: 50,
    });
    expect(config.database.tenant.urlTemplate).toBe('postgresql://localhost:5432/tenant_{tenant_id}');
    expect(config.security.rateLimit).toEqual({ enabled: true, defaultRpm: 100 });
    expect(config.logging.level).toBe('info');
  });
});

describe('the example template', () => {
  it('loads with no variables set, and with them set', async () => {
    const config = await loadConfig({ path: example, env: {} });
    expect(config.service.id).toBe('keli_tutor');
    expect(config.database.embedded).toBe(true);
    expect(config.marketplace.apiUrl).toBe('http://localhost:8505/api/v1');
    expect(config.marketplace.apiKey).toBeUndefined();
    expect(config.marketplace.webhooks.secrets).toEqual([]);
    expect(config.auth.jwt.enabled).toBe(false);
    expect(config.plans.campus?.rpm).toBeNull();
    expect(config.plans.free?.quotas.users).toEqual({ limit: 3, period: 'never', enforcement: 'block' });

    const configured = await loadConfig({
      path: example,
      env: {
        DATABASE_URL: 'postgresql://app:pw@db:5432/mt_paas_central',
        MARKETPLACE_WEBHOOK_SECRET: 'whsec_abc',
        JWT_SECRET: 'x'.repeat(32),
      },
    });
    expect(configured.database.embedded).toBe(false);
    expect(configured.marketplace.webhooks.secrets).toEqual(['whsec_abc']);
    expect(configured.auth.jwt.enabled).toBe(true);
  });

  it('mentions every key the schema accepts', () => {
    const text = readFileSync(example, 'utf8');
    // Every key of every section, read from the schema itself: a key added to the schema and not
    // to the template fails here.
    const keys = new Set<string>();
    const visited = new Set<string>();
    const walk = (path: (string | number)[]): void => {
      const id = JSON.stringify(path);
      if (visited.has(id) || path.length > 8) return;
      visited.add(id);
      for (const key of knownKeysAt(mtPaasConfigSchema, path)) {
        keys.add(key);
        // into a mapping, a list item, or a record entry (a plan, a quota meter)
        for (const next of [[key], [key, 0], [key, 'entry'], [key, 'entry', 'entry']])
          walk([...path, ...next]);
      }
    };
    walk([]);
    expect(keys.size).toBeGreaterThan(70);
    for (const key of ['compose_template', 'extract_pattern', 'soft_limit', 'interval_minutes', 'custom'])
      expect(keys).toContain(key);
    const missing = [...keys].filter((key) => !new RegExp(`(^|[\\s{,#])${key}:`, 'm').test(text));
    expect(missing).toEqual([]);
  });
});

describe('finding files', () => {
  it('runs on the built-in defaults when there is no file', async () => {
    const config = await loadConfig({ cwd: directory, env: {} });
    expect(config.database.embedded).toBe(true);
    expect(config.isolation.mode).toBe('row');
    expect(findConfigFiles({ cwd: directory, env: {} })).toEqual({ main: undefined, overlays: [] });
  });

  it('finds mt-paas.yaml, then mt_paas_config.yaml, in cwd', async () => {
    writeFileSync(join(directory, 'mt_paas_config.yaml'), 'service:\n  id: second\n');
    expect((await loadConfig({ cwd: directory, env: {} })).service.id).toBe('second');
    writeFileSync(join(directory, 'mt-paas.yaml'), 'service:\n  id: first\n');
    expect((await loadConfig({ cwd: directory, env: {} })).service.id).toBe('first');
  });

  it('finds mt-paas.<env>.yaml and <basename>.<env>.yaml overlays, long and short env names', () => {
    writeFileSync(join(directory, 'mt-paas.yaml'), '');
    writeFileSync(join(directory, 'mt-paas.dev.yaml'), '');
    expect(findConfigFiles({ cwd: directory, environment: 'development', env: {} })).toEqual({
      main: join(directory, 'mt-paas.yaml'),
      overlays: [join(directory, 'mt-paas.dev.yaml')],
      environment: 'development',
    });
    writeFileSync(join(directory, 'service.yaml'), '');
    writeFileSync(join(directory, 'service.staging.yml'), '');
    expect(
      findConfigFiles({ cwd: directory, path: 'service.yaml', env: { MT_PAAS_ENV: 'staging' } }).overlays,
    ).toEqual([join(directory, 'service.staging.yml')]);
  });

  it('refuses two overlays for one environment', async () => {
    writeFileSync(join(directory, 'service.yaml'), '');
    writeFileSync(join(directory, 'service.prod.yaml'), '');
    writeFileSync(join(directory, 'mt-paas.production.yaml'), '');
    const issues = await issuesOf(() =>
      loadConfig({ cwd: directory, path: 'service.yaml', environment: 'prod', env: {} }),
    );
    expect(issues.map((issue) => issue.file).sort()).toEqual(
      [join(directory, 'mt-paas.production.yaml'), join(directory, 'service.prod.yaml')].sort(),
    );
  });

  it('reports a missing explicit path', async () => {
    const issues = await issuesOf(() => loadConfig({ cwd: directory, path: 'nope.yaml', env: {} }));
    expect(issues).toEqual([expect.objectContaining({ kind: 'file', file: join(directory, 'nope.yaml') })]);
  });

  it('takes the environment from the option, then MT_PAAS_ENV, then NODE_ENV', () => {
    expect(resolveEnvironment('dev', { MT_PAAS_ENV: 'prod', NODE_ENV: 'test' })).toBe('dev');
    expect(resolveEnvironment(undefined, { MT_PAAS_ENV: 'prod', NODE_ENV: 'test' })).toBe('prod');
    expect(resolveEnvironment(undefined, { NODE_ENV: 'test' })).toBe('test');
    expect(resolveEnvironment(undefined, {})).toBeUndefined();
  });
});

describe('overlays', () => {
  it('deep-merges mappings and replaces lists and values', async () => {
    writeFileSync(
      join(directory, 'mt-paas.yaml'),
      [
        'tenant_identification:',
        '  methods: [header, subdomain, query_param]',
        'plans:',
        '  free:',
        '    features: [ai_chat, rag]',
        'database:',
        '  central:',
        '    url: postgresql://localhost/central',
        '    pool_size: 10',
        'custom:',
        '  llm: { model: gpt-4, temperature: 0.2 }',
      ].join('\n'),
    );
    writeFileSync(
      join(directory, 'mt-paas.test.yaml'),
      [
        'tenant_identification:',
        '  methods: [cookie]',
        'plans:',
        '  free:',
        '    features: [quiz]',
        'database:',
        '  central:',
        '    pool_size: 2',
        'custom:',
        '  llm: { model: local }',
      ].join('\n'),
    );
    const config = await loadConfig({ cwd: directory, environment: 'test', env: {} });
    expect(config.tenantIdentification.methods).toEqual([{ type: 'cookie', name: 'tenant_id' }]);
    expect(config.plans.free?.features).toEqual({ quiz: true });
    expect(config.database.central).toEqual({ url: 'postgresql://localhost/central', poolSize: 2 });
    expect(config.custom).toEqual({ llm: { model: 'local', temperature: 0.2 } });
  });

  it('resets a key to its default with null', async () => {
    writeFileSync(join(directory, 'mt-paas.yaml'), 'logging:\n  level: debug\n');
    writeFileSync(join(directory, 'mt-paas.prod.yaml'), 'logging:\n  level: null\n');
    expect((await loadConfig({ cwd: directory, environment: 'prod', env: {} })).logging.level).toBe('info');
  });

  it('names the overlay file, line and column of a problem it brings', async () => {
    writeFileSync(join(directory, 'mt-paas.yaml'), 'logging:\n  level: info\n');
    writeFileSync(join(directory, 'mt-paas.dev.yaml'), '# dev\nlogging:\n  level: chatty\n  levle: debug\n');
    const issues = await issuesOf(() => loadConfig({ cwd: directory, environment: 'dev', env: {} }));
    expect(issues).toEqual([
      expect.objectContaining({
        file: join(directory, 'mt-paas.dev.yaml'),
        path: 'logging.level',
        line: 3,
        column: 10,
      }),
      expect.objectContaining({
        file: join(directory, 'mt-paas.dev.yaml'),
        path: 'logging.levle',
        line: 4,
        column: 3,
      }),
    ]);
  });

  it('reports missing variables of the main file and the overlay together', async () => {
    writeFileSync(join(directory, 'mt-paas.yaml'), 'marketplace:\n  api_key: ${MAIN_KEY}\n');
    writeFileSync(join(directory, 'mt-paas.dev.yaml'), 'auth:\n  jwt:\n    secret: ${DEV_SECRET}\n');
    const issues = await issuesOf(() => loadConfig({ cwd: directory, environment: 'dev', env: {} }));
    expect(issues.map((issue) => [issue.file, issue.variable, issue.line])).toEqual([
      [join(directory, 'mt-paas.yaml'), 'MAIN_KEY', 2],
      [join(directory, 'mt-paas.dev.yaml'), 'DEV_SECRET', 3],
    ]);
  });

  it('types custom with a customSchema', async () => {
    copyFileSync(seed, join(directory, 'mt-paas.yaml'));
    const config = await loadConfig({
      cwd: directory,
      env: seedEnv,
      customSchema: z.object({
        llm: z.object({ default_model: z.string(), fallback_model: z.string() }),
        rag: z.object({ chunk_size: z.number().int(), overlap: z.number().int() }),
      }),
    });
    const chunkSize: number = config.custom.rag.chunk_size;
    expect(chunkSize).toBe(500);
  });
});
