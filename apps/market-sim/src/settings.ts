import { MtPaasError } from '@mt-paas/context';
import { z } from 'zod';

const seconds = z
  .string()
  .transform((value) => value.split(',').map((part) => Number(part.trim())))
  .refine((list) => list.length > 0 && list.every((n) => Number.isFinite(n) && n >= 0), {
    error: 'expected comma-separated seconds, e.g. "1,5,30"',
  });

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65_535).default(8505),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_URL: z.string().optional(),
  MARKET_SIM_DATA_DIR: z.string().min(1).default('.data/market-sim'),
  MARKET_SIM_PUBLIC_URL: z.url().optional(),
  MARKET_SIM_RETRY_SCHEDULE: seconds.optional(),
  MARKET_SIM_POLL_MS: z.coerce.number().int().min(0).default(250),
  MARKET_SIM_DELIVERY_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  MARKET_SIM_HEARTBEAT_INTERVAL_SECONDS: z.coerce.number().positive().default(30),
  MARKET_SIM_MISSED_BEATS: z.coerce.number().int().positive().default(3),
  MARKET_SIM_SSO_ALG: z.enum(['RS256', 'ES256']).default('RS256'),
  MARKET_SIM_SSO_RETIRED_KEY_SECONDS: z.coerce.number().int().nonnegative().default(3600),
  MARKET_SIM_SSO_TOKEN_SECONDS: z.coerce.number().int().positive().max(3600).default(120),
});

/** The simulator's settings, from the environment. */
export interface SimSettings {
  port: number;
  host: string;
  databaseUrl?: string;
  dataDir: string;
  publicUrl?: string;
  retrySchedule?: number[];
  pollMs: number;
  deliveryTimeoutMs: number;
  heartbeatIntervalSeconds: number;
  missedBeats: number;
  ssoAlgorithm: 'RS256' | 'ES256';
  ssoRetiredKeySeconds: number;
  ssoTokenSeconds: number;
}

/** Reads the settings. @throws MtPaasError `CONFIG_INVALID` naming the variable and what it expects. */
export function loadSettings(env: Record<string, string | undefined>): SimSettings {
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new MtPaasError(
      'CONFIG_INVALID',
      `Environment variable ${String(issue?.path[0])}: ${issue?.message}. Fix it or unset it to use the default.`,
    );
  }
  const e = parsed.data;
  return {
    port: e.PORT,
    host: e.HOST,
    ...(e.DATABASE_URL === undefined ? {} : { databaseUrl: e.DATABASE_URL }),
    dataDir: e.MARKET_SIM_DATA_DIR,
    ...(e.MARKET_SIM_PUBLIC_URL === undefined
      ? {}
      : { publicUrl: e.MARKET_SIM_PUBLIC_URL.replace(/\/+$/, '') }),
    ...(e.MARKET_SIM_RETRY_SCHEDULE === undefined ? {} : { retrySchedule: e.MARKET_SIM_RETRY_SCHEDULE }),
    pollMs: e.MARKET_SIM_POLL_MS,
    deliveryTimeoutMs: e.MARKET_SIM_DELIVERY_TIMEOUT_MS,
    heartbeatIntervalSeconds: e.MARKET_SIM_HEARTBEAT_INTERVAL_SECONDS,
    missedBeats: e.MARKET_SIM_MISSED_BEATS,
    ssoAlgorithm: e.MARKET_SIM_SSO_ALG,
    ssoRetiredKeySeconds: e.MARKET_SIM_SSO_RETIRED_KEY_SECONDS,
    ssoTokenSeconds: e.MARKET_SIM_SSO_TOKEN_SECONDS,
  };
}
