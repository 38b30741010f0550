import { describeWithChromium, launchChromium } from '@mt-paas/test-env';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { api, seedApplication } from './__fixtures__/api.js';
import { type FakeService, startFakeService, startTestSim, type TestSim } from './__fixtures__/sim.js';

/**
 * The console in a real browser (Debian's chromium driven by playwright-core): approve an
 * application and see the tenant appear, block it and see the status change, change its plan,
 * replay a delivery; what a service sent shows as text, never as markup.
 */
describeWithChromium('market-sim console in chromium', () => {
  let sim: TestSim | undefined;
  let fake: FakeService | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    fake = await startFakeService();
    sim = await startTestSim({ pollMs: 100, retrySchedule: [0.1, 0.1] });
    sim.startWorkers();
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await sim?.close();
    await fake?.close();
  });

  const row = (page: Page, attribute: string, value: string) =>
    page.locator(`tr[data-${attribute}="${value}"]`);

  it('approves an application, shows the tenant, blocks and unblocks it, changes its plan', async () => {
    const { applicationId } = await seedApplication(sim!, {
      serviceId: 'tutor',
      tenantId: 'hallym',
      baseUrl: fake!.url,
      protocol: 'signed',
    });
    fake!.answers.push({ status: 200, body: { ok: true, access_url: 'https://tutor.test/?tenant=hallym' } });
    const page = await browser!.newPage();
    await page.goto(`${sim!.url}/`);
    await page.waitForFunction(() => (window as unknown as { consoleReady?: boolean }).consoleReady === true);

    const application = row(page, 'application', String(applicationId));
    await expect.poll(() => application.locator('td').nth(5).textContent()).toBe('requested');
    await expect.poll(() => page.locator('#tenants tbody tr').count()).toBe(0);
    await application.getByRole('button', { name: 'Approve' }).click();

    // the tenant appears, and becomes active once the service answered the delivery
    const tenant = row(page, 'tenant', 'tutor/hallym');
    await expect.poll(() => tenant.locator('td').nth(2).textContent(), { timeout: 15_000 }).toBe('active');
    await expect
      .poll(() => application.locator('td').nth(5).textContent(), { timeout: 15_000 })
      .toBe('completed');
    expect(await tenant.getByRole('link', { name: 'open' }).getAttribute('href')).toBe(
      'https://tutor.test/?tenant=hallym',
    );

    await tenant.getByRole('button', { name: 'Block' }).click();
    await expect.poll(() => tenant.locator('td').nth(2).textContent()).toBe('blocked');
    await expect
      .poll(() => fake!.requests.map((request) => JSON.parse(request.body).type), { timeout: 15_000 })
      .toContain('tenant.blocked');

    await tenant.getByRole('button', { name: 'Unblock' }).click();
    await expect.poll(() => tenant.locator('td').nth(2).textContent()).toBe('active');

    await tenant.getByLabel('plan of hallym').selectOption('professional');
    await tenant.getByRole('button', { name: 'Change plan' }).click();
    await expect.poll(() => tenant.locator('td').nth(4).textContent()).toBe('professional');
    await expect
      .poll(
        () =>
          fake!.requests
            .map((request) => JSON.parse(request.body))
            .find((e) => e.type === 'subscription.updated')?.data.plan,
        {
          timeout: 15_000,
        },
      )
      .toBe('professional');

    // the deliveries table: every one delivered; a replay sends one again
    await expect
      .poll(() => page.locator('#deliveries tbody tr td:nth-child(5)').allTextContents(), { timeout: 15_000 })
      .toEqual(['delivered', 'delivered', 'delivered', 'delivered']);
    const sent = fake!.requests.length;
    await page.locator('#deliveries tbody tr').last().getByRole('button', { name: 'Replay' }).click();
    await expect.poll(() => fake!.requests.length).toBe(sent + 1);
    await page.close();
  });

  it('shows health, usage and audit alerts, as text', async () => {
    const apiKey = (await api(sim!, 'GET', '/sim/v1/services/tutor')).body.apiKey as string;
    const auth = { authorization: `Bearer ${apiKey}` };
    await api(
      sim!,
      'POST',
      '/api/v1/services/tutor/heartbeat',
      { status: 'healthy', active_tenants: ['hallym'], metrics: { requests_per_minute: 42 } },
      auth,
    );
    await api(
      sim!,
      'POST',
      '/api/v1/services/tutor/usage',
      {
        records: [
          {
            tenant_id: 'hallym',
            meter: 'api_requests',
            quantity: 1520,
            at: '2026-03-05T00:00:00Z',
            idempotency_key: 'u1',
          },
        ],
      },
      auth,
    );
    await api(
      sim!,
      'POST',
      '/api/v1/audit/alerts',
      {
        service_id: 'tutor',
        alert_type: '<img src=x onerror="window.pwned=true">',
        severity: 'critical',
        details: { source_tenant: 'hallym' },
        timestamp: '2026-03-05T00:00:00Z',
      },
      auth,
    );
    const page = await browser!.newPage();
    await page.goto(`${sim!.url}/`);
    await page.waitForFunction(() => (window as unknown as { consoleReady?: boolean }).consoleReady === true);
    const service = row(page, 'service', 'tutor');
    await expect.poll(() => service.locator('td').nth(3).textContent()).toBe('healthy');
    expect(await service.locator('td').nth(5).textContent()).toContain('"requests_per_minute":42');
    await expect
      .poll(() => page.locator('#usage tbody tr td').allTextContents())
      .toEqual(['tutor', 'hallym', 'api_requests', '2026-03-01T00:00:00.000Z', '1520', '1']);
    await expect
      .poll(() => page.locator('#alerts tbody tr td').nth(1).textContent())
      .toBe('<img src=x onerror="window.pwned=true">');
    expect(await page.locator('#alerts img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { pwned?: boolean }).pwned)).toBeUndefined();
    await page.close();
  });
});
