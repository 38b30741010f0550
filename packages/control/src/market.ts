import type { Heartbeat, MarketplaceClient, Outbox } from '@mt-paas/marketplace';

/** Health the service reports in its heartbeat (seed 001 §5.1 `status`). */
export type ServiceHealth = Heartbeat['status'];

/** The request metrics of a heartbeat, over the interval since the previous beat (`@mt-paas/marketplace`'s `Heartbeat['metrics']`, all set). */
export type HeartbeatMetrics = Required<NonNullable<Heartbeat['metrics']>>;

/**
 * Sends one heartbeat: `@mt-paas/marketplace`'s `createMarketplaceClient(...)`, passed as is. Control
 * calls `heartbeat(beat, { retries: 0 })` (a missed beat is not replayed) and bounds each call with its
 * own timeout; a rejection counts as a failed beat.
 */
export type HeartbeatSender = Pick<MarketplaceClient, 'heartbeat'>;

/**
 * Where control leaves what the market must hear (status reports, audit alerts): `@mt-paas/marketplace`'s
 * `createOutbox({ driver: catalog.driver, schema: catalog.schema })`, passed as is; its dispatcher
 * delivers with retries. Control passes `executor` (the open catalog transaction) when a message must
 * commit with a catalog change, and reads `stats()` (when present) for the outbox gauges.
 */
export type MarketOutbox = Pick<Outbox, 'enqueue'> & Partial<Pick<Outbox, 'stats'>>;
