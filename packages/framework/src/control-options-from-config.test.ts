import { parseConfig } from '@mt-paas/config';
import type { AuditEvent, TenantId } from '@mt-paas/context';
import { createAuditLogger, createHeartbeatService } from '@mt-paas/control';
import { createMarketplaceClient } from '@mt-paas/marketplace';
import { createPipelineMetrics } from '@mt-paas/middleware';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type MarketStandIn, startMarketStandIn } from './__fixtures__/market-stand-in.js';
import { controlOptionsFromConfig } from './control-options-from-config.js';

const catalog = {} as Parameters<typeof controlOptionsFromConfig>[1]['catalog'];

const yaml = (extra: string) => `
service:
  id: keli_tutor
  public_url: https://tutor.example
${extra}`;

describe('controlOptionsFromConfig', () => {
  let market: MarketStandIn;
  beforeEach(async () => {
    market = await startMarketStandIn();
  });
  afterEach(async () => {
    await market.close();
  });

  it('security.cross_tenant_audit: false reaches the audit logger and turns the cross-tenant audit off', async () => {
    for (const [flag, expected] of [
      ['true', 1],
      ['false', 0],
      [undefined, 1],
    ] as const) {
      const config = parseConfig(
        yaml(flag === undefined ? '' : `security:\n  cross_tenant_audit: ${flag}\n`),
      );
      const options = controlOptionsFromConfig(config, { catalog });
      const rows: AuditEvent[] = [];
      const audit = createAuditLogger({
        ...options.audit,
        sink: { record: async (event) => void rows.push(event) },
        serviceId: options.serviceId,
      });
      await audit.record({
        type: 'cross_tenant_access_attempt',
        severity: 'high',
        tenantId: 'hallym' as TenantId,
        targetTenantId: 'korea',
        at: new Date(),
      });
      await audit.flush();
      expect(rows).toHaveLength(expected);
    }
  });

  it('marketplace.* becomes a heartbeat to api_url every heartbeat_interval, with the pipeline registry as metrics', async () => {
    const config = parseConfig(
      yaml(
        `marketplace:\n  api_url: "${market.url}"\n  api_key: mk_1\n  heartbeat_interval: 30\n  timeout_seconds: 5\n`,
      ),
    );
    const pipeline = createPipelineMetrics();
    const options = controlOptionsFromConfig(config, { catalog, registry: pipeline.registry });
    const heartbeat = options.heartbeat;
    if (heartbeat === undefined || heartbeat === false) throw new Error('expected a heartbeat');
    expect(heartbeat.intervalMs).toBe(30_000);
    expect(heartbeat.timeoutMs).toBe(5_000);
    const service = createHeartbeatService({
      ...heartbeat,
      serviceId: options.serviceId,
      logger: pino({ level: 'silent' }),
    });
    await expect(service.beat()).resolves.toBe(true);
    expect(market.beats[0]?.headers.authorization).toBe('Bearer mk_1');
    expect(market.beats[0]?.path).toBe('/api/v1/services/keli_tutor/heartbeat');
  });

  it('a marketplace client passed as heartbeatSender is used as is (one client for the service)', () => {
    const config = parseConfig(yaml('marketplace:\n  api_url: "https://market.example/api/v1"\n'));
    const client = createMarketplaceClient({ apiUrl: market.url, serviceId: 'keli_tutor' });
    const options = controlOptionsFromConfig(config, { catalog, heartbeatSender: client });
    expect(options.heartbeat !== false && options.heartbeat?.sender).toBe(client);
  });

  it('no marketplace: no heartbeat; activity log from logging.activity_log, refused without service.public_url', () => {
    const options = controlOptionsFromConfig(
      parseConfig(
        yaml(
          'logging:\n  activity_log:\n    endpoint: https://lrs.example/xapi\n    username: u\n    password: p\n',
        ),
      ),
      { catalog },
    );
    expect(options.heartbeat).toBeUndefined();
    expect(options.activityLog).toEqual({
      endpoint: 'https://lrs.example/xapi',
      serviceUrl: 'https://tutor.example',
      username: 'u',
      password: 'p',
    });
    const withoutUrl = parseConfig(
      'service:\n  id: keli_tutor\nlogging:\n  activity_log:\n    endpoint: https://lrs.example/xapi\n',
    );
    expect(() => controlOptionsFromConfig(withoutUrl, { catalog })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});
