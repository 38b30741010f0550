import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { getConfigIssues } from './config-error.js';
import { parseConfig } from './parse-config.js';
import { redact } from './redact.js';

const parse = (text: string) => parseConfig(text, { env: {}, filename: 'mt-paas.yaml' });

function issuesOf(text: string) {
  try {
    parse(text);
  } catch (error) {
    return getConfigIssues(error);
  }
  throw new Error('expected the config to be rejected');
}

describe('empty config (embedded demo)', () => {
  it('is valid and gives the embedded defaults', () => {
    for (const text of ['', '# only a comment\n', '---\n']) {
      const config = parse(text);
      expect(config.database.embedded).toBe(true);
      expect(config.database.central.url).toBeUndefined();
      expect(config.isolation.mode).toBe('row');
      expect(config.marketplace.enabled).toBe(false);
      expect(config.auth.jwt.enabled).toBe(false);
      expect(config.tenantIdentification.methods).toEqual([
        { type: 'header', name: 'X-Tenant-ID' },
        { type: 'subdomain', extractPattern: '^([^.]+)' },
        { type: 'query_param', name: 'tenant_id' },
      ]);
      expect(Object.keys(config.plans)).toEqual(['free', 'starter', 'professional', 'enterprise']);
      expect(config.logging.level).toBe('info');
      expect(config.custom).toEqual({});
    }
  });

  it('treats empty sections and empty values as "use the default"', () => {
    const config = parse('service:\nmarketplace:\n  api_key:\nlogging:\n  level: ~\n');
    expect(config.service.id).toBe('mt_paas_service');
    expect(config.marketplace.apiKey).toBeUndefined();
    expect(config.logging.level).toBe('info');
  });
});

describe('service', () => {
  it('maps every key', () => {
    const config = parse(
      'service:\n  id: keli_tutor\n  name: KELI TUTOR\n  version: "1.0.0"\n  description: AI tutor\n  public_url: https://keli.example.com\n',
    );
    expect(config.service).toEqual({
      id: 'keli_tutor',
      name: 'KELI TUTOR',
      version: '1.0.0',
      description: 'AI tutor',
      publicUrl: 'https://keli.example.com',
    });
  });

  it('names the service after its id by default and rejects a bad id', () => {
    expect(parse('service:\n  id: advisor\n').service.name).toBe('advisor');
    expect(issuesOf('service:\n  id: "bad id!"\n')).toEqual([
      expect.objectContaining({ path: 'service.id', line: 2, column: 7 }),
    ]);
  });
});

describe('marketplace', () => {
  it('maps every key to camelCase with units in the names', () => {
    const config = parse(
      [
        'marketplace:',
        '  api_url: https://market.example.com/api/v1',
        '  api_key: mk_123',
        '  heartbeat_interval: 30',
        '  subscription_check: false',
        '  grace_period_hours: 48',
        '  timeout_seconds: 5',
        '  webhooks:',
        '    secrets: whsec_abc',
        '    legacy_secret: webhook_secret_12345',
        '    tolerance_seconds: 120',
      ].join('\n'),
    );
    expect(config.marketplace).toEqual({
      enabled: true,
      apiUrl: 'https://market.example.com/api/v1',
      apiKey: 'mk_123',
      heartbeatIntervalSeconds: 30,
      subscriptionCheck: false,
      gracePeriodHours: 48,
      timeoutSeconds: 5,
      webhooks: { secrets: ['whsec_abc'], legacySecret: 'webhook_secret_12345', toleranceSeconds: 120 },
    });
  });

  it('accepts durations with a unit suffix and converts them to the field unit', () => {
    const config = parse(
      'marketplace:\n  heartbeat_interval: 2m\n  grace_period_hours: 3d\n  timeout_seconds: 1500ms\n',
    );
    expect(config.marketplace.heartbeatIntervalSeconds).toBe(120);
    expect(config.marketplace.gracePeriodHours).toBe(72);
    expect(config.marketplace.timeoutSeconds).toBe(1.5);
  });

  it('rejects a non-URL api_url, a negative interval and enabled without api_url', () => {
    expect(issuesOf('marketplace:\n  api_url: market.example.com\n  heartbeat_interval: -5\n')).toEqual([
      expect.objectContaining({ path: 'marketplace.api_url', line: 2, column: 12 }),
      expect.objectContaining({ path: 'marketplace.heartbeat_interval', line: 3, column: 23 }),
    ]);
    expect(issuesOf('marketplace:\n  enabled: true\n')).toEqual([
      expect.objectContaining({
        path: 'marketplace.api_url',
        message: expect.stringContaining('enabled: false'),
      }),
    ]);
  });

  it('can be switched off even with an api_url', () => {
    expect(parse('marketplace:\n  enabled: false\n  api_url: https://m.example\n').marketplace.enabled).toBe(
      false,
    );
  });
});

describe('isolation', () => {
  it.each([
    ['row', 'row'],
    ['ROW', 'row'],
    ['SHARED', 'row'],
    ['row_level_security', 'row'],
    ['schema', 'schema'],
    ['SCHEMA_PER_TENANT', 'schema'],
    ['database', 'database'],
    ['DATABASE_PER_TENANT', 'database'],
    ['database-per-tenant', 'database'],
    ['docker', 'docker'],
    ['DOCKER_PER_TENANT', 'docker'],
  ])('accepts mode %s as %s', (written, mode) => {
    expect(parse(`isolation:\n  mode: ${written}\n`).isolation.mode).toBe(mode);
  });

  it('rejects an unknown mode naming the accepted ones', () => {
    expect(issuesOf('isolation:\n  mode: TABLE_PER_TENANT\n')).toEqual([
      expect.objectContaining({
        path: 'isolation.mode',
        line: 2,
        column: 9,
        message: expect.stringContaining('use row, schema, database or docker'),
      }),
    ]);
  });

  it('maps the docker settings and checks the port range', () => {
    const config = parse(
      'isolation:\n  mode: DOCKER_PER_TENANT\n  docker:\n    port_range_start: 20000\n    port_range_size: 10\n    compose_template: t/compose.yml\n',
    );
    expect(config.isolation.docker).toEqual({
      portRangeStart: 20000,
      portRangeSize: 10,
      composeTemplate: 't/compose.yml',
    });
    expect(
      issuesOf('isolation:\n  docker:\n    port_range_start: 65530\n    port_range_size: 100\n'),
    ).toEqual([expect.objectContaining({ path: 'isolation.docker.port_range_size', line: 4, column: 22 })]);
  });
});

describe('database', () => {
  it('maps central, tenant and vector settings', () => {
    const config = parse(
      [
        'database:',
        '  central:',
        '    url: postgresql://app:pw@db:5432/mt_paas_central',
        '    pool_size: 20',
        '  tenant:',
        '    url_template: postgresql://app:pw@db:5432/tenant_{tenant_id}',
        '    pool_size_per_tenant: 3',
        '    max_connections: 200',
        '  vector:',
        '    type: QDRANT',
        '    url: http://localhost:6333',
        '    api_key: qd',
        '    collection_prefix: t_',
      ].join('\n'),
    );
    expect(config.database).toEqual({
      embedded: false,
      dataDir: '.data',
      central: { url: 'postgresql://app:pw@db:5432/mt_paas_central', poolSize: 20 },
      tenant: {
        urlTemplate: 'postgresql://app:pw@db:5432/tenant_{tenant_id}',
        poolSizePerTenant: 3,
        maxConnections: 200,
      },
      vector: { type: 'qdrant', url: 'http://localhost:6333', apiKey: 'qd', collectionPrefix: 't_' },
    });
  });

  it('requires {tenant_id} in the url template, a postgres url, and a url for qdrant', () => {
    const issues = issuesOf(
      [
        'database:',
        '  central:',
        '    url: mysql://db/central',
        '  tenant:',
        '    url_template: postgresql://db/tenant',
        '  vector:',
        '    type: qdrant',
      ].join('\n'),
    );
    expect(issues.map((issue) => [issue.path, issue.line])).toEqual([
      ['database.central.url', 3],
      ['database.tenant.url_template', 5],
      ['database.vector.url', 6],
    ]);
    expect(issues[1]?.message).toContain('{tenant_id}');
  });

  it('says milvus is not supported', () => {
    expect(issuesOf('database:\n  vector:\n    type: milvus\n')[0]?.message).toContain(
      'milvus is not supported',
    );
  });
});

describe('redis', () => {
  it('is optional and takes a redis:// url', () => {
    expect(parse('').redis).toEqual({ keyPrefix: 'mt-paas:' });
    expect(parse('redis:\n  url: redis://localhost:6379\n  key_prefix: "keli:"\n').redis).toEqual({
      url: 'redis://localhost:6379',
      keyPrefix: 'keli:',
    });
    expect(issuesOf('redis:\n  url: localhost:6379\n')).toEqual([
      expect.objectContaining({ path: 'redis.url' }),
    ]);
  });
});

describe('tenant_identification', () => {
  it('keeps the order and maps every method type', () => {
    const config = parse(
      [
        'auth:',
        '  jwt:',
        '    secret: s',
        'tenant_identification:',
        '  methods:',
        '    - type: jwt_claim',
        '      claim_name: org',
        '    - type: cookie',
        '      name: tenant',
        '    - type: path',
        '      prefix: /tenants/',
        '    - type: subdomain',
        '      extract_pattern: "^([a-z0-9_]+)\\\\."',
        '      base_domain: keli.k-university.ai',
        '    - header',
        '    - type: query_param',
        '      name: t',
      ].join('\n'),
    );
    expect(config.tenantIdentification.methods).toEqual([
      { type: 'jwt_claim', claimName: 'org' },
      { type: 'cookie', name: 'tenant' },
      { type: 'path', prefix: '/tenants/' },
      { type: 'subdomain', extractPattern: '^([a-z0-9_]+)\\.', baseDomain: 'keli.k-university.ai' },
      { type: 'header', name: 'X-Tenant-ID' },
      { type: 'query_param', name: 't' },
    ]);
  });

  it('rejects an unknown type, a bad regular expression, and jwt_claim without JWT verification', () => {
    const issues = issuesOf(
      [
        'tenant_identification:',
        '  methods:',
        '    - type: ip_address',
        '    - type: subdomain',
        '      extract_pattern: "([a-z"',
        '    - type: jwt_claim',
      ].join('\n'),
    );
    expect(issues.map((issue) => [issue.path, issue.line])).toEqual([
      ['tenant_identification.methods[0].type', 3],
      ['tenant_identification.methods[1].extract_pattern', 5],
    ]);
    expect(issues[0]?.message).toContain('header, subdomain, jwt_claim, query_param, cookie, path');
    expect(issuesOf('tenant_identification:\n  methods:\n    - jwt_claim\n')).toEqual([
      expect.objectContaining({
        path: 'tenant_identification.methods[0]',
        line: 3,
        message: expect.stringContaining('auth.jwt.secret'),
      }),
    ]);
  });

  it('needs a capture group in the subdomain pattern', () => {
    expect(
      issuesOf(
        'tenant_identification:\n  methods:\n    - type: subdomain\n      extract_pattern: "^[^.]+"\n',
      ),
    ).toEqual([
      expect.objectContaining({
        path: 'tenant_identification.methods[0].extract_pattern',
        line: 4,
        message: expect.stringContaining('capture group'),
      }),
    ]);
  });

  it('needs at least one method', () => {
    expect(issuesOf('tenant_identification:\n  methods: []\n')).toEqual([
      expect.objectContaining({ path: 'tenant_identification.methods' }),
    ]);
  });
});

describe('auth', () => {
  it('maps an HS256 secret setup and marketplace SSO', () => {
    const config = parse(
      [
        'auth:',
        '  jwt:',
        '    secret: topsecret',
        '    algorithm: HS512',
        '    expiry_hours: 12',
        '    issuer: https://market.example.com',
        '    audience: keli_tutor',
        '  marketplace_sso:',
        '    enabled: true',
        '    callback_url: /sso/callback',
      ].join('\n'),
    );
    expect(config.auth).toEqual({
      jwt: {
        enabled: true,
        secret: 'topsecret',
        algorithm: 'HS512',
        expiryHours: 12,
        issuer: 'https://market.example.com',
        audience: ['keli_tutor'],
        clockToleranceSeconds: 30,
        tenantClaim: 'tenant_id',
      },
      marketplaceSso: { enabled: true, callbackUrl: '/sso/callback' },
    });
  });

  it('defaults to RS256 with a JWKS URL', () => {
    const { jwt } = parse(
      'auth:\n  jwt:\n    jwks_url: https://market.example.com/.well-known/jwks.json\n',
    ).auth;
    expect(jwt.enabled).toBe(true);
    expect(jwt.algorithm).toBe('RS256');
    expect(jwt.jwksUrl).toBe('https://market.example.com/.well-known/jwks.json');
  });

  it('rejects incoherent key setups', () => {
    expect(issuesOf('auth:\n  jwt:\n    algorithm: RS256\n    secret: s\n')).toEqual([
      expect.objectContaining({ path: 'auth.jwt.jwks_url', message: expect.stringContaining('public key') }),
    ]);
    expect(issuesOf('auth:\n  jwt:\n    enabled: true\n')).toEqual([
      expect.objectContaining({ path: 'auth.jwt.secret' }),
    ]);
    expect(issuesOf('auth:\n  jwt:\n    algorithm: none\n')).toEqual([
      expect.objectContaining({ path: 'auth.jwt.algorithm', line: 3, column: 16 }),
    ]);
  });
});

describe('features', () => {
  it('keeps feature names as written', () => {
    const config = parse(
      'features:\n  controlled_by_subscription: false\n  defaults:\n    ai_chat: true\n    rag: false\n',
    );
    expect(config.features).toEqual({
      controlledBySubscription: false,
      defaults: { ai_chat: true, rag: false },
    });
    expect(issuesOf('features:\n  defaults:\n    ai_chat: "yes please"\n')).toEqual([
      expect.objectContaining({
        path: 'features.defaults.ai_chat',
        message: expect.stringContaining('true or false'),
      }),
    ]);
  });
});

describe('plans', () => {
  it('has the four tiers of seed 003 by default', () => {
    const { plans } = parse('');
    expect(plans.free?.quotas.api_requests).toEqual({
      limit: 10_000,
      period: 'monthly',
      enforcement: 'block',
    });
    expect(plans.starter?.quotas.storage_mb).toEqual({
      limit: 10_240,
      period: 'never',
      enforcement: 'block',
    });
    expect(plans.professional?.quotas.users?.limit).toBe(50);
    expect(plans.professional?.features.sso).toBe(true);
    expect(plans.free?.features.sso).toBe(false);
    expect(plans.enterprise?.quotas.api_requests?.limit).toBeNull();
    expect(plans.enterprise?.features.white_labeling).toBe(true);
    expect(plans.enterprise?.sla).toBe('99.99%');
  });

  // Seed 003, "Tenant Tiers": every cell of the table (1 GB = 1024 MB; "Unlimited" and
  // ENTERPRISE's "Custom" storage are no limit; "-" is no SLA).
  it.each([
    ['api_requests', [10_000, 100_000, 1_000_000, null]],
    ['storage_mb', [1_024, 10_240, 102_400, null]],
    ['compute_hours', [10, 100, 500, null]],
    ['users', [3, 10, 50, null]],
    ['services', [5, 25, 100, null]],
  ] as const)('has the seed 003 %s limits per tier', (meter, limits) => {
    const { plans } = parse('');
    expect(
      ['free', 'starter', 'professional', 'enterprise'].map((plan) => plans[plan]?.quotas[meter]?.limit),
    ).toEqual(limits);
  });

  it.each([
    ['custom_branding', [false, false, true, true]],
    ['sso', [false, false, true, true]],
    ['priority_support', [false, false, true, true]],
    ['white_labeling', [false, false, false, true]],
    ['dedicated_schema', [false, false, false, true]],
  ] as const)('has the seed 003 %s feature per tier', (feature, enabled) => {
    const { plans } = parse('');
    expect(
      ['free', 'starter', 'professional', 'enterprise'].map((plan) => plans[plan]?.features[feature]),
    ).toEqual(enabled);
  });

  it('has the seed 003 SLAs and an rpm for every tier', () => {
    const { plans } = parse('');
    expect(Object.values(plans).map((plan) => [plan.name, plan.sla])).toEqual([
      ['Free', undefined],
      ['Starter', '99%'],
      ['Professional', '99.9%'],
      ['Enterprise', '99.99%'],
    ]);
    for (const plan of Object.values(plans)) expect(plan.rpm).toBeGreaterThan(0);
  });

  it('deep-merges a config plan over the default one, case-insensitively', () => {
    const { plans } = parse(
      [
        'plans:',
        '  FREE:',
        '    rpm: 30',
        '    quotas:',
        '      api_requests: 500',
        '      storage_mb: 2048',
        '      llm_tokens: { limit: 5000, period: daily, enforcement: throttle, soft_limit: 4000 }',
        '    features: [ai_chat]',
      ].join('\n'),
    );
    expect(plans.free?.rpm).toBe(30);
    expect(plans.free?.quotas.api_requests).toEqual({ limit: 500, period: 'monthly', enforcement: 'block' });
    expect(plans.free?.quotas.storage_mb).toEqual({ limit: 2048, period: 'never', enforcement: 'block' });
    expect(plans.free?.quotas.llm_tokens).toEqual({
      limit: 5000,
      period: 'daily',
      enforcement: 'throttle',
      softLimit: 4000,
    });
    expect(plans.free?.quotas.users).toEqual({ limit: 3, period: 'never', enforcement: 'block' });
    expect(plans.free?.features).toEqual({ ai_chat: true });
    expect(plans.free?.name).toBe('Free');
  });

  it('adds plans (rpm defaulting to security.rate_limit.default_rpm) and removes one with null', () => {
    const { plans } = parse(
      [
        'security:',
        '  rate_limit:',
        '    default_rpm: 90',
        'plans:',
        '  starter: null',
        '  campus:',
        '    name: Campus',
        '    quotas:',
        '      users: { limit: unlimited, period: never }',
        '      api_requests: { limit: 1000, period: hourly, enforcement: overage }',
        '    features: { quiz: true, rag: false }',
        '  unlimited_rpm:',
        '    rpm: unlimited',
      ].join('\n'),
    );
    expect(Object.keys(plans)).toEqual(['free', 'professional', 'enterprise', 'campus', 'unlimited_rpm']);
    expect(plans.campus).toEqual({
      name: 'Campus',
      rpm: 90,
      quotas: {
        users: { limit: null, period: 'never', enforcement: 'block' },
        api_requests: { limit: 1000, period: 'hourly', enforcement: 'overage' },
      },
      features: { quiz: true, rag: false },
    });
    expect(plans.unlimited_rpm?.rpm).toBeNull();
  });

  it('rejects a bad period, enforcement, limit and soft limit with their paths', () => {
    const issues = issuesOf(
      [
        'plans:',
        '  pro_plus:',
        '    quotas:',
        '      api_requests: { limit: -1 }',
        '      storage_mb: { limit: 10, period: weekly }',
        '      users: { limit: 10, enforcement: ignore }',
        '      llm_tokens: { limit: 10, soft_limit: 20 }',
      ].join('\n'),
    );
    expect(issues.map((issue) => [issue.path, issue.line])).toEqual([
      ['plans.pro_plus.quotas.api_requests.limit', 4],
      ['plans.pro_plus.quotas.storage_mb.period', 5],
      ['plans.pro_plus.quotas.users.enforcement', 6],
      ['plans.pro_plus.quotas.llm_tokens.soft_limit', 7],
    ]);
    expect(issues[1]?.message).toContain('hourly, daily, monthly, never');
    expect(issues[2]?.message).toContain('block, throttle, alert, overage');
  });
});

describe('security', () => {
  it('maps audit, encryption and rate limit', () => {
    const config = parse(
      'security:\n  cross_tenant_audit: false\n  encryption:\n    enabled: true\n    key: 0123456789abcdef0123456789abcdef\n  rate_limit:\n    enabled: false\n    default_rpm: 100\n',
    );
    expect(config.security).toEqual({
      crossTenantAudit: false,
      encryption: { enabled: true, key: '0123456789abcdef0123456789abcdef', previousKeys: [] },
      rateLimit: { enabled: false, defaultRpm: 100 },
    });
  });

  it('accepts retired encryption keys (one or a list) for a key rotation, only beside the current key', () => {
    const one = parse(
      'security:\n  encryption:\n    key: new-key-0123456789abcdef\n    previous_keys: old-key-0123456789abcdef\n',
    );
    expect(one.security.encryption.previousKeys).toEqual(['old-key-0123456789abcdef']);
    const list = parse(
      'security:\n  encryption:\n    key: new-key-0123456789abcdef\n    previous_keys: [old-1-0123456789abcdef, old-2-0123456789abcdef]\n',
    );
    expect(list.security.encryption.previousKeys).toEqual([
      'old-1-0123456789abcdef',
      'old-2-0123456789abcdef',
    ]);
    expect(issuesOf('security:\n  encryption:\n    previous_keys: [old-1-0123456789abcdef]\n')).toEqual([
      expect.objectContaining({ path: 'security.encryption.previous_keys' }),
    ]);
    expect(
      issuesOf('security:\n  encryption:\n    key: new-key-0123456789abcdef\n    previous_keys: [short]\n'),
    ).toEqual([
      expect.objectContaining({ path: expect.stringContaining('security.encryption.previous_keys') }),
    ]);
    expect(redact(list.security)).toMatchObject({
      encryption: { key: '[redacted]', previousKeys: ['[redacted]', '[redacted]'] },
    });
  });

  it('requires a key when encryption is enabled, and a long enough one', () => {
    expect(issuesOf('security:\n  encryption:\n    enabled: true\n')).toEqual([
      expect.objectContaining({ path: 'security.encryption.key', line: 2, column: 3 }),
    ]);
    expect(issuesOf('security:\n  encryption:\n    key: short\n')).toEqual([
      expect.objectContaining({ path: 'security.encryption.key', message: expect.stringContaining('16') }),
    ]);
  });
});

describe('logging', () => {
  it('accepts levels in any case, Python spellings included', () => {
    expect(parse('logging:\n  level: DEBUG\n').logging.level).toBe('debug');
    expect(parse('logging:\n  level: WARNING\n').logging.level).toBe('warn');
    expect(issuesOf('logging:\n  level: LOUD\n')).toEqual([
      expect.objectContaining({ path: 'logging.level' }),
    ]);
  });

  it('maps activity log and usage report', () => {
    const config = parse(
      'logging:\n  activity_log:\n    endpoint: https://lrs.example.com/xapi\n    username: lrs\n    password: pw\n  usage_report:\n    enabled: false\n    interval_minutes: 10\n',
    );
    expect(config.logging).toEqual({
      level: 'info',
      activityLog: {
        enabled: true,
        endpoint: 'https://lrs.example.com/xapi',
        username: 'lrs',
        password: 'pw',
      },
      usageReport: { enabled: false, intervalMinutes: 10 },
    });
    expect(issuesOf('logging:\n  activity_log:\n    enabled: true\n')).toEqual([
      expect.objectContaining({ path: 'logging.activity_log.endpoint' }),
    ]);
  });
});

describe('custom', () => {
  it('is free-form by default', () => {
    const config = parse('custom:\n  llm:\n    default_model: gpt-4\n  anything: [1, null]\n');
    expect(config.custom).toEqual({ llm: { default_model: 'gpt-4' }, anything: [1, null] });
  });

  it('is typed and validated by a customSchema, with file:line:column errors', () => {
    const customSchema = z.object({
      llm: z.object({ default_model: z.string(), temperature: z.number().max(2).default(0.7) }),
    });
    const config = parseConfig('custom:\n  llm:\n    default_model: gpt-4\n', { env: {}, customSchema });
    const model: string = config.custom.llm.default_model;
    expect(model).toBe('gpt-4');
    expect(config.custom.llm.temperature).toBe(0.7);

    let issues: ReturnType<typeof getConfigIssues> = [];
    try {
      parseConfig('custom:\n  llm:\n    default_model: gpt-4\n    temperature: 9\n', {
        env: {},
        customSchema,
        filename: 'svc.yaml',
      });
    } catch (error) {
      issues = getConfigIssues(error);
    }
    expect(issues).toEqual([
      expect.objectContaining({ file: 'svc.yaml', path: 'custom.llm.temperature', line: 4, column: 18 }),
    ]);
  });

  it('reports a required custom field that is missing at its nearest parent', () => {
    const customSchema = z.object({ rag: z.object({ chunk_size: z.number() }) });
    let issues: ReturnType<typeof getConfigIssues> = [];
    try {
      parseConfig('custom:\n  rag: {}\n', { env: {}, customSchema });
    } catch (error) {
      issues = getConfigIssues(error);
    }
    expect(issues).toEqual([
      expect.objectContaining({
        path: 'custom.rag.chunk_size',
        line: 2,
        column: 3,
        message: expect.stringContaining('required'),
      }),
    ]);
  });
});

describe('errors', () => {
  it('names unknown keys at the key, with a suggestion', () => {
    const issues = issuesOf(
      'marketplace:\n  apiUrl: https://m.example\n  heartbeat_intervall: 5\nlogin:\n  x: 1\n',
    );
    expect(issues).toEqual([
      expect.objectContaining({
        path: 'marketplace.apiUrl',
        line: 2,
        column: 3,
        message: expect.stringContaining('"api_url"'),
      }),
      expect.objectContaining({
        path: 'marketplace.heartbeat_intervall',
        line: 3,
        column: 3,
        message: expect.stringContaining('"heartbeat_interval"'),
      }),
      expect.objectContaining({
        path: 'login',
        line: 4,
        column: 1,
        message: expect.stringContaining('expected one of'),
      }),
    ]);
  });

  it('ignores top-level x- keys, a home for anchors used with merge keys', () => {
    const config = parse(
      'x-pool: &pool\n  pool_size: 25\ndatabase:\n  central:\n    <<: *pool\n    url: postgresql://db/c\n',
    );
    expect(config.database.central).toEqual({ url: 'postgresql://db/c', poolSize: 25 });
  });

  it('suggests the right key inside a plan', () => {
    expect(issuesOf('plans:\n  free:\n    rpmm: 3\n')).toEqual([
      expect.objectContaining({
        path: 'plans.free.rpmm',
        line: 3,
        column: 5,
        message: expect.stringContaining('"rpm"'),
      }),
    ]);
  });

  it('reports YAML syntax errors with their place', () => {
    const issues = issuesOf('service:\n  id: a\n  id: b\n');
    expect(issues[0]).toEqual(expect.objectContaining({ kind: 'yaml', file: 'mt-paas.yaml', line: 3 }));
  });

  it('rejects a top level that is not a mapping', () => {
    expect(issuesOf('- service\n')[0]?.message).toContain('mapping');
  });

  it('throws MtPaasError CONFIG_INVALID with a message that lists every problem', () => {
    let caught: unknown;
    try {
      parse('isolation:\n  mode: nope\nlogging:\n  level: LOUD\n');
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ name: 'MtPaasError', code: 'CONFIG_INVALID', httpStatus: 500 });
    expect((caught as Error).message).toContain('(2 problems)');
    expect((caught as Error).message).toContain('mt-paas.yaml:2:9 isolation.mode:');
    expect((caught as Error).message).toContain('mt-paas.yaml:4:10 logging.level:');
  });
});
