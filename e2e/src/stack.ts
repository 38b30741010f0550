/**
 * The two apps as real processes: the market simulator (`apps/market-sim`, run from its TypeScript
 * source with tsx, as its own `start` script does) and the reference tutor (`apps/reference-tutor`,
 * its built `dist/main.js`). Used by `pnpm start` (src/start.ts) and by the end-to-end suites.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generateWebhookSecret } from '@mt-paas/marketplace';
import { type RunningProcess, type StartProcessOptions, startProcess } from '@mt-paas/test-env/processes';
import type { MarketDriver } from './market.js';

/** The repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MARKET_SIM_DIR = fileURLToPath(new URL('../../apps/market-sim/', import.meta.url));
export const TUTOR_DIR = fileURLToPath(new URL('../../apps/reference-tutor/', import.meta.url));
export const TUTOR_MAIN = fileURLToPath(new URL('../../apps/reference-tutor/dist/main.js', import.meta.url));

type Env = Record<string, string | undefined>;
type Common = Pick<StartProcessOptions, 'onOutput' | 'inheritEnv' | 'timeoutMs'> & { name?: string };

/** `node --import tsx src/main.ts` in apps/market-sim; prints `market-sim listening on http://…`. */
export function startMarketSim(env: Env, options: Common = {}): Promise<RunningProcess> {
  return startProcess({
    name: options.name ?? 'market-sim',
    args: ['--import', 'tsx', 'src/main.ts'],
    cwd: MARKET_SIM_DIR,
    env,
    ...options,
  });
}

/** `node apps/reference-tutor/dist/main.js`; prints `reference-tutor listening on http://…`. */
export function startTutor(env: Env, options: Common = {}): Promise<RunningProcess> {
  if (!existsSync(TUTOR_MAIN)) {
    return Promise.reject(new Error(`${TUTOR_MAIN} does not exist: build the workspace first (pnpm build).`));
  }
  return startProcess({
    name: options.name ?? 'reference-tutor',
    args: [TUTOR_MAIN],
    cwd: TUTOR_DIR,
    env,
    ...options,
  });
}

/** The secrets a service and the market share. */
export interface ServiceSecrets {
  serviceId: string;
  /** Standard Webhooks signing secret (`whsec_…`). */
  webhookSecret: string;
  /** The seed's `X-Webhook-Secret` for the legacy routes. */
  legacySecret: string;
  /** `X-API-Key` on tenant creation and `Authorization: Bearer` on the service's reports. */
  apiKey: string;
  /** The tutor's `X-API-Key` for its superadmin routes. */
  superadminKey: string;
  /** The tutor's session-token secret (every instance of one service shares it). */
  jwtSecret: string;
}

/** Fresh secrets for a service. */
export function newServiceSecrets(serviceId = 'keli_tutor'): ServiceSecrets {
  const random = () =>
    generateWebhookSecret()
      .slice('whsec_'.length)
      .replace(/[^A-Za-z0-9]/g, '');
  return {
    serviceId,
    webhookSecret: generateWebhookSecret(),
    legacySecret: `legacy_${random()}`,
    apiKey: `sk_${random()}`,
    superadminKey: `sa_${random()}`,
    jwtSecret: `${random()}${random()}`,
  };
}

/** The tutor's environment for these secrets and this market (the documented contract of its main.js). */
export function tutorEnv(market: RunningProcess, secrets: ServiceSecrets, extra: Env = {}): Env {
  return {
    SERVICE_ID: secrets.serviceId,
    MARKET_URL: `${market.url}/api/v1`,
    MARKET_SSO_ISSUER: market.url,
    WEBHOOK_SECRET: secrets.webhookSecret,
    LEGACY_WEBHOOK_SECRET: secrets.legacySecret,
    MARKET_API_KEY: secrets.apiKey,
    SUPERADMIN_API_KEY: secrets.superadminKey,
    JWT_SECRET: secrets.jwtSecret,
    ...extra,
  };
}

/** Registers the tutor at the market (upsert: the same call updates a registration). */
export async function registerTutor(
  market: MarketDriver,
  tutorUrl: string,
  secrets: ServiceSecrets,
  protocol: 'signed' | 'legacy' = 'signed',
): Promise<void> {
  await market.registerService({
    id: secrets.serviceId,
    name: 'KELI Tutor (reference)',
    base_url: tutorUrl,
    protocol,
    webhook_secrets: [secrets.webhookSecret],
    legacy_secret: secrets.legacySecret,
    api_key: secrets.apiKey,
    sso_callback_path: '/api/auth/sso/callback',
  });
}
