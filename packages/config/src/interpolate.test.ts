// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${VAR} is the config syntax these tests exercise
import { describe, expect, it } from 'vitest';
import { getConfigIssues } from './config-error.js';
import { interpolate, resolvePlainScalar } from './interpolate.js';
import { parseConfig } from './parse-config.js';

function issuesOf(run: () => unknown) {
  try {
    run();
  } catch (error) {
    return getConfigIssues(error);
  }
  throw new Error('expected the config to be rejected');
}

describe('interpolate', () => {
  it('replaces ${VAR} and keeps the surrounding text', () => {
    expect(interpolate('postgresql://app:${DB_PASSWORD}@db:5432/app', { DB_PASSWORD: 's3cret' })).toEqual({
      value: 'postgresql://app:s3cret@db:5432/app',
      problems: [],
    });
  });

  it('uses the default of ${VAR:-default} when the variable is unset or empty', () => {
    expect(interpolate('${LEVEL:-info}', {}).value).toBe('info');
    expect(interpolate('${LEVEL:-info}', { LEVEL: '' }).value).toBe('info');
    expect(interpolate('${LEVEL:-info}', { LEVEL: 'debug' }).value).toBe('debug');
    expect(interpolate('${URL:-http://localhost:8505/api}', {}).value).toBe('http://localhost:8505/api');
  });

  it('allows balanced braces inside a default', () => {
    expect(interpolate('${TEMPLATE:-postgresql://db/tenant_{tenant_id}}', {}).value).toBe(
      'postgresql://db/tenant_{tenant_id}',
    );
    expect(interpolate('${TEMPLATE:-x}/{tenant_id}', { TEMPLATE: 'db' }).value).toBe('db/{tenant_id}');
  });

  it('uses the default of ${VAR-default} only when the variable is unset', () => {
    expect(interpolate('[${PREFIX-t_}]', {}).value).toBe('[t_]');
    expect(interpolate('[${PREFIX-t_}]', { PREFIX: '' }).value).toBe('[]');
  });

  it('lists every missing variable and leaves them as written', () => {
    const result = interpolate('${A}/${B:-ok}/${C}', { B: '' });
    expect(result.problems).toEqual([
      { variable: 'A', kind: 'missing' },
      { variable: 'C', kind: 'missing' },
    ]);
    expect(result.value).toBe('${A}/ok/${C}');
  });

  it('treats $${ as a literal ${ and reports malformed expressions', () => {
    expect(interpolate('cost: $${PRICE}', {})).toEqual({ value: 'cost: ${PRICE}', problems: [] });
    expect(interpolate('${1BAD}', {}).problems).toEqual([{ variable: '${1BAD}', kind: 'malformed' }]);
    expect(interpolate('x ${UNCLOSED', {}).problems).toEqual([{ variable: '${UNCLOSED', kind: 'malformed' }]);
  });

  it('types an interpolated plain scalar like the YAML core schema would', () => {
    expect(resolvePlainScalar('8080')).toBe(8080);
    expect(resolvePlainScalar('2.5')).toBe(2.5);
    expect(resolvePlainScalar('true')).toBe(true);
    expect(resolvePlainScalar('FALSE')).toBe(false);
    expect(resolvePlainScalar('')).toBeNull();
    expect(resolvePlainScalar('hello')).toBe('hello');
  });
});

describe('interpolation inside a config', () => {
  it('reports every missing variable at once with file:line:column and key path', () => {
    const text = [
      'marketplace:',
      '  api_url: "${MARKET_URL}"',
      '  api_key: "${MARKETPLACE_API_KEY}"',
      'auth:',
      '  jwt:',
      '    secret: ${JWT_SECRET}',
      'security:',
      '  encryption:',
      '    key: "${AES_SECRET_KEY:-0123456789abcdef0123}"',
      '',
    ].join('\n');
    const issues = issuesOf(() =>
      parseConfig(text, { filename: 'svc.yaml', env: { MARKET_URL: 'https://m.example/api' } }),
    );
    expect(issues).toEqual([
      expect.objectContaining({
        kind: 'interpolation',
        file: 'svc.yaml',
        line: 3,
        column: 12,
        path: 'marketplace.api_key',
        variable: 'MARKETPLACE_API_KEY',
      }),
      expect.objectContaining({
        kind: 'interpolation',
        file: 'svc.yaml',
        line: 6,
        column: 13,
        path: 'auth.jwt.secret',
        variable: 'JWT_SECRET',
      }),
    ]);
  });

  it('puts all missing variables in one error message', () => {
    let message = '';
    try {
      parseConfig('service:\n  name: ${A}\n  description: ${B} and ${C}\n', { filename: 'x.yaml', env: {} });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('x.yaml:2:9 service.name: environment variable A is not set');
    expect(message).toContain('x.yaml:3:16 service.description: environment variable B is not set');
    expect(message).toContain('environment variable C is not set');
  });

  it('applies defaults and types plain interpolated scalars (numbers, booleans)', () => {
    const config = parseConfig(
      [
        'marketplace:',
        '  api_url: ${MARKET_URL:-http://localhost:8505/api/v1}',
        '  heartbeat_interval: ${HEARTBEAT:-30}',
        '  subscription_check: ${CHECK_SUBSCRIPTION:-false}',
        '  api_key: ${MARKETPLACE_API_KEY:-}',
      ].join('\n'),
      { env: { HEARTBEAT: '15' } },
    );
    expect(config.marketplace.apiUrl).toBe('http://localhost:8505/api/v1');
    expect(config.marketplace.heartbeatIntervalSeconds).toBe(15);
    expect(config.marketplace.subscriptionCheck).toBe(false);
    expect(config.marketplace.apiKey).toBeUndefined();
  });

  it('treats an interpolation that comes out empty as "not set", quoted or not', () => {
    const config = parseConfig(
      'auth:\n  jwt:\n    secret: "${JWT_SECRET:-}"\nmarketplace:\n  api_key: "${KEY}"\n',
      {
        env: { KEY: '' },
      },
    );
    expect(config.auth.jwt.secret).toBeUndefined();
    expect(config.auth.jwt.enabled).toBe(false);
    expect(config.marketplace.apiKey).toBeUndefined();
  });

  it('keeps quoted interpolated scalars as strings', () => {
    const issues = issuesOf(() =>
      parseConfig('marketplace:\n  heartbeat_interval: "${HEARTBEAT}"\n', { env: { HEARTBEAT: 'often' } }),
    );
    expect(issues).toEqual([
      expect.objectContaining({ path: 'marketplace.heartbeat_interval', line: 2, column: 23 }),
    ]);
    expect(
      parseConfig('service:\n  version: "${VERSION}"\n', { env: { VERSION: '2' } }).service.version,
    ).toBe('2');
  });

  it('does not interpolate keys, and interpolates inside custom and lists', () => {
    const config = parseConfig(
      [
        'custom:',
        '  ${NOT_A_KEY}: 1',
        '  models: ["${MODEL}", fallback]',
        'marketplace:',
        '  webhooks:',
        '    secrets: ["${WEBHOOK_SECRET_NEW}", "${WEBHOOK_SECRET_OLD}"]',
      ].join('\n'),
      { env: { MODEL: 'gpt-4o', WEBHOOK_SECRET_NEW: 'whsec_new', WEBHOOK_SECRET_OLD: 'whsec_old' } },
    );
    expect(config.custom).toEqual({ '${NOT_A_KEY}': 1, models: ['gpt-4o', 'fallback'] });
    expect(config.marketplace.webhooks.secrets).toEqual(['whsec_new', 'whsec_old']);
  });

  it('reports a missing variable in a list item with its index', () => {
    const issues = issuesOf(() =>
      parseConfig('marketplace:\n  webhooks:\n    secrets:\n      - whsec_a\n      - ${SECOND}\n', {
        env: {},
      }),
    );
    expect(issues).toEqual([
      expect.objectContaining({
        path: 'marketplace.webhooks.secrets[1]',
        line: 5,
        column: 9,
        variable: 'SECOND',
      }),
    ]);
  });
});
