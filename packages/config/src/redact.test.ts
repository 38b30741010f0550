import { describe, expect, it } from 'vitest';
import { parseConfig } from './parse-config.js';
import { REDACTED, redact } from './redact.js';

const text = [
  'marketplace:',
  '  api_url: https://market.example.com/api/v1',
  '  api_key: mk_live_123',
  '  webhooks:',
  '    secrets: [whsec_new, whsec_old]',
  '    legacy_secret: webhook_secret_12345',
  'database:',
  '  central:',
  '    url: postgresql://app:p%40ss@db.example.com:5432/mt_paas_central',
  '  tenant:',
  '    url_template: postgresql://tenant_user:tpw@db:5432/tenant_{tenant_id}',
  '  vector:',
  '    type: qdrant',
  '    url: http://localhost:6333',
  '    api_key: qdrant-key',
  'redis:',
  '  url: redis://:redispw@cache:6379/0',
  'auth:',
  '  jwt:',
  '    secret: jwt-secret',
  'security:',
  '  encryption:',
  '    key: 0123456789abcdef0123456789abcdef',
  'logging:',
  '  activity_log:',
  '    endpoint: https://lrs.example.com/xapi',
  '    username: lrs',
  '    password: lrs-password',
  'custom:',
  '  llm:',
  '    openai_api_key: sk-123',
  '    model: gpt-4',
  '    max_tokens: 1000',
].join('\n');

describe('redact', () => {
  const config = parseConfig(text, { env: {} });
  const safe = redact(config);

  it('masks every secret of the typed config', () => {
    expect(safe.marketplace.apiKey).toBe(REDACTED);
    expect(safe.marketplace.webhooks.secrets).toEqual([REDACTED, REDACTED]);
    expect(safe.marketplace.webhooks.legacySecret).toBe(REDACTED);
    expect(safe.auth.jwt.secret).toBe(REDACTED);
    expect(safe.security.encryption.key).toBe(REDACTED);
    expect(safe.database.vector.apiKey).toBe(REDACTED);
    expect(safe.logging.activityLog.password).toBe(REDACTED);
    expect(safe.custom).toEqual({ llm: { openai_api_key: REDACTED, model: 'gpt-4', max_tokens: 1000 } });
  });

  it('masks passwords inside URLs and keeps the rest of the URL', () => {
    expect(safe.database.central.url).toBe(
      `postgresql://app:${REDACTED}@db.example.com:5432/mt_paas_central`,
    );
    expect(safe.database.tenant.urlTemplate).toBe(
      `postgresql://tenant_user:${REDACTED}@db:5432/tenant_{tenant_id}`,
    );
    expect(safe.redis.url).toBe(`redis://:${REDACTED}@cache:6379/0`);
    expect(safe.marketplace.apiUrl).toBe('https://market.example.com/api/v1');
  });

  it('leaves non-secrets alone and does not modify its input', () => {
    expect(safe.logging.activityLog.username).toBe('lrs');
    expect(safe.plans).toEqual(config.plans);
    expect(config.marketplace.apiKey).toBe('mk_live_123');
    expect(config.database.central.url).toContain('p%40ss');
    const serialized = JSON.stringify(safe);
    for (const secret of [
      'mk_live_123',
      'whsec_new',
      'webhook_secret_12345',
      'p%40ss',
      'tpw',
      'redispw',
      'jwt-secret',
      '0123456789abcdef',
      'qdrant-key',
      'lrs-password',
      'sk-123',
    ]) {
      expect(serialized).not.toContain(secret);
    }
  });

  it('masks custom keys whose name has a secret word in any spelling, and leaves counts and look-alikes', () => {
    expect(
      redact({
        custom: {
          hf_token: 'hf_abc',
          githubToken: 'ghp_x',
          'slack-bot-token': 'xoxb',
          webhook_signing_key: 'sk',
          awsAccessKey: 'AKIA',
          db_passphrase: 'pp',
          api_tokens: ['t1', 't2'],
          max_tokens: 1000,
          tokens_per_minute: '600',
          tokenizer: 'cl100k',
          keyboard_layout: 'us',
          key_prefix: 'mt-paas:',
        },
      }),
    ).toEqual({
      custom: {
        hf_token: REDACTED,
        githubToken: REDACTED,
        'slack-bot-token': REDACTED,
        webhook_signing_key: REDACTED,
        awsAccessKey: REDACTED,
        db_passphrase: REDACTED,
        api_tokens: [REDACTED, REDACTED],
        max_tokens: 1000,
        tokens_per_minute: '600',
        tokenizer: 'cl100k',
        keyboard_layout: 'us',
        key_prefix: 'mt-paas:',
      },
    });
  });

  it('works on the raw snake_case tree too', () => {
    expect(
      redact({
        marketplace: { api_key: 'k', api_url: 'https://m' },
        security: { encryption: { key: 'k2' } },
      }),
    ).toEqual({
      marketplace: { api_key: REDACTED, api_url: 'https://m' },
      security: { encryption: { key: REDACTED } },
    });
  });
});

describe('redact() reads URLs and connection strings, it does not pattern-match them', () => {
  const secret = 'S3cr3t';
  const cases: Array<[string, string]> = [
    // passwords holding URL delimiters
    [
      `postgresql://app:p@ss${secret}@db.internal:5432/central`,
      `postgresql://app:${REDACTED}@db.internal:5432/central`,
    ],
    [`postgres://app:${secret}@@db/x`, `postgres://app:${REDACTED}@db/x`],
    [`postgres://app:a:b:${secret}@db/x`, `postgres://app:${REDACTED}@db/x`],
    [`postgres://app:pa/ss${secret}@db:5432/x`, `postgres://app:${REDACTED}@db:5432/x`],
    [`postgres://app:pa?ss${secret}@db/x`, `postgres://app:${REDACTED}@db/x`],
    [`postgres://app:pa#ss${secret}@db/x`, `postgres://app:${REDACTED}@db/x`],
    [`postgres://app:p%40ss${secret}@db/x`, `postgres://app:${REDACTED}@db/x`],
    [`redis://:${secret}@cache:6379/0`, `redis://:${REDACTED}@cache:6379/0`],
    [`redis://default:${secret}@[::1]:6379`, `redis://default:${REDACTED}@[::1]:6379`],
    [`rediss://user:${secret}@cache.example.com`, `rediss://user:${REDACTED}@cache.example.com`],
    [
      `mongodb+srv://u:${secret}@cluster0.example.net/db`,
      `mongodb+srv://u:${REDACTED}@cluster0.example.net/db`,
    ],
    [`postgres://u:${secret}@h1:5432,h2:5433/db`, `postgres://u:${REDACTED}@h1:5432,h2:5433/db`],
    [`amqp://guest:${secret}@mq/vhost`, `amqp://guest:${REDACTED}@mq/vhost`],
    [`HTTPS://admin:${secret}@Example.COM/path`, `HTTPS://admin:${REDACTED}@Example.COM/path`],
    // secrets in the query and fragment
    [`postgres://db/app?password=${secret}`, `postgres://db/app?password=${REDACTED}`],
    [
      `postgres://db/app?sslmode=require&password=${secret}&application_name=x`,
      `postgres://db/app?sslmode=require&password=${REDACTED}&application_name=x`,
    ],
    [
      `postgres:///app?host=/var/run/postgresql&sslpassword=${secret}`,
      `postgres:///app?host=/var/run/postgresql&sslpassword=${REDACTED}`,
    ],
    [`postgres://db/app?PASSWORD=${secret}`, `postgres://db/app?PASSWORD=${REDACTED}`],
    [`postgres://db/app?pass%77ord=${secret}`, `postgres://db/app?pass%77ord=${REDACTED}`],
    [
      `jdbc:postgresql://db/app?user=app&password=${secret}`,
      `jdbc:postgresql://db/app?user=app&password=${REDACTED}`,
    ],
    [
      `https://api.example.com/v1?api_key=${secret}&limit=5`,
      `https://api.example.com/v1?api_key=${REDACTED}&limit=5`,
    ],
    [
      `https://x.example/cb#access_token=${secret}&state=1`,
      `https://x.example/cb#access_token=${REDACTED}&state=1`,
    ],
    [
      `https://x.example/?next=postgres://u:${secret}@db/x`,
      `https://x.example/?next=postgres://u:${REDACTED}@db/x`,
    ],
    [
      `postgres://u:${secret}@db:5432/tenant_{tenant_id}?password=${secret}`,
      `postgres://u:${REDACTED}@db:5432/tenant_{tenant_id}?password=${REDACTED}`,
    ],
    // several URLs in one string, and libpq keyword/value strings
    [
      `primary=postgres://a:${secret}@p/x replica=postgres://b:${secret}@r/x`,
      `primary=postgres://a:${REDACTED}@p/x replica=postgres://b:${REDACTED}@r/x`,
    ],
    [
      `host=db port=5432 user=app password=${secret} dbname=app`,
      `host=db port=5432 user=app password=${REDACTED} dbname=app`,
    ],
    [`host=db password='a b ${secret}' dbname=app`, `host=db password=${REDACTED} dbname=app`],
    [`host=db password = ${secret}`, `host=db password = ${REDACTED}`],
  ];

  it.each(cases)('masks %s', (input, expected) => {
    const safe = redact({ custom: { target: input } }) as { custom: { target: string } };
    expect(safe.custom.target).toBe(expected);
    expect(safe.custom.target).not.toContain(secret);
  });

  it('keeps URLs and strings without secrets byte for byte', () => {
    for (const plain of [
      'https://market.example.com/api/v1?limit=5&page=2',
      'postgresql://app@db:5432/central',
      'postgresql://db/tenant_{tenant_id}',
      'https://example.com/users/@me',
      'mailto:someone@example.com',
      'max_tokens=4096 tokens_per_minute=100',
      'user@example.com',
    ]) {
      expect((redact({ custom: { value: plain } }) as { custom: { value: string } }).custom.value).toBe(
        plain,
      );
    }
  });
});
