/**
 * `pnpm --filter @mt-paas/market-sim start`: the market simulator on `PORT` (default 8505).
 * Environment: see README ("Configuration").
 */
import { loadSettings } from './settings.js';
import { startMarketSim } from './start.js';

const settings = loadSettings(process.env);
const sim = await startMarketSim(settings);
console.log(
  `market-sim listening on ${sim.url} (console ${sim.url}/, API docs ${sim.url}/docs, storage ${sim.storage})`,
);

const stop = async () => {
  await sim.close();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
