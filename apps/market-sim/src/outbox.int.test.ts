import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { api, seedApplication } from './__fixtures__/api.js';
import { type FakeService, startFakeService } from './__fixtures__/sim.js';
import { openSimDatabase } from './database.js';
import { buildServer, type MarketServer } from './server.js';

/** Two simulators on one Postgres database: migrations once, and no delivery sent twice. */
describeWithPostgres('market-sim on Postgres, two instances', () => {
  const database = useTestDatabase({ label: 'market_sim_pair' });
  let fake: FakeService;
  let sims: MarketServer[] = [];

  beforeAll(async () => {
    fake = await startFakeService();
    // both open (and migrate) the same database at once: the advisory lock lets one migrate
    const drivers = await Promise.all([0, 1].map(() => openSimDatabase({ databaseUrl: database.url })));
    sims = await Promise.all(
      drivers.map((driver) =>
        buildServer({ driver, publicUrl: 'http://market.test', pollMs: 0, retrySchedule: [0] }),
      ),
    );
  }, 120_000);

  afterAll(async () => {
    await Promise.all(sims.map((sim) => sim.close()));
    await fake?.close();
  });

  it('shares the work: every delivery is sent exactly once', async () => {
    const [a, b] = sims as [MarketServer, MarketServer];
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const { applicationId } = await seedApplication(i % 2 === 0 ? a : b, {
        serviceId: 'tutor',
        tenantId: `univ_${i}`,
        baseUrl: fake.url,
        protocol: 'signed',
      });
      ids.push(
        (await api(i % 2 === 0 ? b : a, 'POST', `/sim/v1/applications/${applicationId}/approve`)).body
          .delivery_id,
      );
    }
    let sent = 0;
    do {
      const rounds = await Promise.all([
        a.market.outbox.runOnce(),
        b.market.outbox.runOnce(),
        a.market.outbox.runOnce(),
      ]);
      sent = rounds.reduce((sum, n) => sum + n, 0);
    } while (sent > 0);
    const received = fake.requests.map((request) => String(request.headers['webhook-id']));
    expect(received.sort()).toEqual([...ids].sort());
    const { deliveries } = (await api(a, 'GET', '/sim/v1/deliveries?status=delivered')).body;
    expect(deliveries).toHaveLength(12);
    for (const delivery of deliveries) {
      expect((await api(b, 'GET', `/sim/v1/deliveries/${delivery.id}`)).body.attempts).toHaveLength(1);
    }
  });
});
