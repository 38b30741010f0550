import { parseConfig } from '@mt-paas/config';
import { createMarketplaceReceiver, type MarketplaceHandlers } from '@mt-paas/marketplace';
import { describe, expect, it } from 'vitest';
import { clientOptionsFromConfig, receiverOptionsFromConfig } from './marketplace-options-from-config.js';

const noopHandlers = (): MarketplaceHandlers => ({
  onProvisionRequested: () => ({}),
  onSubscriptionUpdated: () => undefined,
  onServiceCancelled: () => ({}),
  onUserDeleted: () => ({ deletedTenants: [] }),
  onBlocked: () => undefined,
  onUnblocked: () => undefined,
});

const YAML = `
service:
  id: keli_tutor
marketplace:
  api_url: "https://market.k-university.ai/api/v1"
  api_key: "\${MARKETPLACE_API_KEY}"
  timeout_seconds: 5
  webhooks:
    secrets: ["\${NEW_SECRET}", "\${OLD_SECRET}"]
    legacy_secret: "\${SERVICE_MARKET_WEBHOOK_SECRET}"
    tolerance_seconds: 120
auth:
  marketplace_sso:
    enabled: true
    callback_url: "https://keli.example/auth/market/back"
`;

const env = {
  MARKETPLACE_API_KEY: 'mk_live_123',
  NEW_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  OLD_SECRET: 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD',
  SERVICE_MARKET_WEBHOOK_SECRET: 'webhook_secret_12345',
};

describe('options from mt-paas.yaml', () => {
  it('reads the marketplace section into receiver and client options', () => {
    const config = parseConfig(YAML, { filename: 'mt-paas.yaml', env });
    expect(receiverOptionsFromConfig(config)).toEqual({
      serviceId: 'keli_tutor',
      secrets: [env.NEW_SECRET, env.OLD_SECRET],
      legacySecret: 'webhook_secret_12345',
      apiKeys: ['mk_live_123'],
      toleranceSeconds: 120,
      ssoCallbackPath: '/auth/market/back',
    });
    expect(clientOptionsFromConfig(config)).toEqual({
      apiUrl: 'https://market.k-university.ai/api/v1',
      apiKey: 'mk_live_123',
      serviceId: 'keli_tutor',
      timeoutMs: 5000,
    });
  });

  it('refuses a configured secret that is not a whsec_ secret when the receiver starts', () => {
    const config = parseConfig(YAML, { filename: 'mt-paas.yaml', env: { ...env, OLD_SECRET: 'hunter2' } });
    expect(() =>
      createMarketplaceReceiver({
        ...receiverOptionsFromConfig(config),
        handlers: noopHandlers(),
      }),
    ).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('needs marketplace.api_url for the client', () => {
    const config = parseConfig('service:\n  id: x1\n', { filename: 'mt-paas.yaml', env: {} });
    expect(() => clientOptionsFromConfig(config)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});
