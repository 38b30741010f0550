/**
 * `pnpm --filter @mt-paas/reference-tutor start`: the tutor as a process. Environment: PORT (8085; 0 = a
 * free port), HOST, MT_PAAS_CONFIG, DATABASE_URL, TUTOR_DATA_DIR, REDIS_URL, ISOLATION_MODE, MARKET_URL,
 * MARKET_SSO_ISSUER, SERVICE_ID, WEBHOOK_SECRET, MARKET_API_KEY, SUPERADMIN_API_KEY, JWT_SECRET (README).
 * SIGINT / SIGTERM close it (timers, outbox drain, pools) and exit 0.
 */
import { isMtPaasError } from '@mt-paas/context';
import { startTutor } from './server.js';

try {
  const tutor = await startTutor();
  console.log(`reference-tutor listening on ${tutor.url}`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    tutor.mt.logger.info({ signal }, 'reference-tutor stopping');
    tutor.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('reference-tutor did not close cleanly:', error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
} catch (error) {
  console.error(
    isMtPaasError(error) ? `reference-tutor could not start: ${error.code}: ${error.message}` : error,
  );
  process.exit(1);
}
