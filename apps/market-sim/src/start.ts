import type { AddressInfo } from 'node:net';
import { openSimDatabase } from './database.js';
import { buildServer, type MarketServer } from './server.js';
import type { SimSettings } from './settings.js';

/** A running simulator. */
export interface RunningMarketSim extends MarketServer {
  /** `http://host:port` it listens on. */
  url: string;
  /** `postgres` or `pglite:<dir>`. */
  storage: string;
}

/**
 * Opens the database, builds the server, listens and starts the dispatcher. With `port: 0` the
 * system picks a free port (`url` tells which).
 */
export async function startMarketSim(settings: SimSettings): Promise<RunningMarketSim> {
  const driver = await openSimDatabase({
    ...(settings.databaseUrl === undefined ? {} : { databaseUrl: settings.databaseUrl }),
    dataDir: settings.dataDir,
  });
  // The issuer must be known before listening; with port 0 it is fixed up below.
  const issuerPlaceholder = settings.publicUrl ?? `http://${settings.host}:${settings.port}`;
  const publicUrl = { value: issuerPlaceholder };
  const server = await buildServer({
    driver,
    publicUrl: () => publicUrl.value,
    ...(settings.retrySchedule === undefined ? {} : { retrySchedule: settings.retrySchedule }),
    pollMs: settings.pollMs,
    deliveryTimeoutMs: settings.deliveryTimeoutMs,
    heartbeatIntervalSeconds: settings.heartbeatIntervalSeconds,
    missedBeats: settings.missedBeats,
    ssoAlgorithm: settings.ssoAlgorithm,
    ssoRetiredKeySeconds: settings.ssoRetiredKeySeconds,
    ssoTokenSeconds: settings.ssoTokenSeconds,
  });
  await server.app.listen({ port: settings.port, host: settings.host });
  const address = server.app.server.address() as AddressInfo;
  const url = `http://${settings.host}:${address.port}`;
  if (settings.publicUrl === undefined) publicUrl.value = url;
  server.startWorkers();
  return {
    ...server,
    url,
    storage: settings.databaseUrl === undefined ? `pglite:${settings.dataDir}` : 'postgres',
  };
}
