import { describeWithChromium, launchChromium } from '@mt-paas/test-env';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type DemoService, startDemoService } from './demo-service.js';

/**
 * The demo's page in a real browser (Debian's chromium driven by playwright-core): it finds the
 * tenant with `@mt-paas/middleware/client` and each institution sees and writes only its own notes.
 */

describeWithChromium('demo page in chromium', () => {
  let service: DemoService | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    service = await startDemoService();
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await service?.close();
  });

  async function openAs(query: string) {
    const context = await browser!.newContext();
    const page = await context.newPage();
    await page.goto(`${service!.url}/${query}`);
    await page.waitForFunction(() => (window as unknown as { demoReady?: boolean }).demoReady === true);
    return { page, context };
  }

  it('lets each institution write and read only its own notes', async () => {
    const univ = await openAs('?tenant=univ_8');
    await expect.poll(() => univ.page.textContent('#tenant')).toBe('Institution: univ_8 (from the query)');
    await univ.page.fill('#title', 'Browser note');
    await univ.page.fill('#body', 'Written from chromium for univ_8.');
    await univ.page.click('#add-note button');
    await expect
      .poll(() => univ.page.locator('#notes li').allTextContents())
      .toEqual(['Browser note — Written from chromium for univ_8.']);

    // the tenant found in the URL was kept in a cookie: a reload without ?tenant= stays univ_8
    await univ.page.goto(`${service!.url}/`);
    await expect.poll(() => univ.page.textContent('#tenant')).toBe('Institution: univ_8 (from the cookie)');
    await expect.poll(() => univ.page.locator('#notes li').count()).toBe(1);

    await univ.page.fill('#question', 'What was written from chromium?');
    await univ.page.click('#ask button');
    await expect.poll(() => univ.page.textContent('#answer')).toContain('Written from chromium for univ_8.');
    await univ.context.close();

    const demo = await openAs('?tenant=demo_7');
    await expect.poll(() => demo.page.textContent('#tenant')).toBe('Institution: demo_7 (from the query)');
    await expect.poll(() => demo.page.evaluate(() => document.readyState)).toBe('complete');
    await expect.poll(() => demo.page.locator('#notes li').count()).toBe(0);
    expect(await demo.page.textContent('#error')).toBe('');
    await demo.context.close();
  });

  it('shows the refusal of a suspended institution', async () => {
    const closed = await openAs('?tenant=closed_u');
    await expect.poll(() => closed.page.textContent('#error')).toContain('TENANT_SUSPENDED');
    await closed.context.close();
  });

  it('asks for an institution when the address names none', async () => {
    const none = await openAs('');
    expect(await none.page.textContent('#tenant')).toContain('open the page with ?tenant=');
    expect(await none.page.isHidden('#app')).toBe(true);
    await none.context.close();
  });
});
