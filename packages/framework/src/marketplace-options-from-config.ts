import type { MtPaasConfig } from '@mt-paas/config';
import { MtPaasError } from '@mt-paas/context';
import type { MarketplaceClientOptions, MarketplaceReceiverOptions } from '@mt-paas/marketplace';

type ConfigPart = Pick<MtPaasConfig, 'service' | 'marketplace' | 'auth'>;

/**
 * The receiver options `mt-paas.yaml` decides: `service.id`, `marketplace.webhooks.secrets`,
 * `.legacy_secret`, `.tolerance_seconds`, the inbound API key (`marketplace.api_key`, the key the
 * marketplace and the service share) and `auth.marketplace_sso.callback_url`.
 */
export function receiverOptionsFromConfig(
  config: ConfigPart,
): Pick<
  MarketplaceReceiverOptions,
  'serviceId' | 'secrets' | 'legacySecret' | 'apiKeys' | 'toleranceSeconds' | 'ssoCallbackPath'
> {
  const { webhooks } = config.marketplace;
  return {
    serviceId: config.service.id,
    secrets: webhooks.secrets,
    ...(webhooks.legacySecret === undefined ? {} : { legacySecret: webhooks.legacySecret }),
    apiKeys: config.marketplace.apiKey === undefined ? [] : [config.marketplace.apiKey],
    toleranceSeconds: webhooks.toleranceSeconds,
    ssoCallbackPath: config.auth.marketplaceSso.callbackUrl.startsWith('/')
      ? config.auth.marketplaceSso.callbackUrl
      : new URL(config.auth.marketplaceSso.callbackUrl).pathname,
  };
}

/** The client options from `marketplace.api_url`, `.api_key`, `.timeout_seconds` and `service.id`. */
export function clientOptionsFromConfig(config: ConfigPart): MarketplaceClientOptions {
  const { marketplace } = config;
  if (marketplace.apiUrl === undefined) {
    throw new MtPaasError('CONFIG_INVALID', 'Set marketplace.api_url to report to the marketplace.');
  }
  return {
    apiUrl: marketplace.apiUrl,
    serviceId: config.service.id,
    timeoutMs: marketplace.timeoutSeconds * 1000,
    ...(marketplace.apiKey === undefined ? {} : { apiKey: marketplace.apiKey }),
  };
}
