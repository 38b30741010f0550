import { describeWithChromium, launchChromium } from '@mt-paas/test-env';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TEST_ENV, tutorClient } from './__fixtures__/tutor-client.js';
import { type RunningTutor, startTutor } from './server.js';

/**
 * The tutor's page in Debian's chromium (playwright-core): the tenant from `?tenant=` or the subdomain,
 * its name and colour shown, password login, a streamed answer citing the document, SSO's `#token=`.
 */
describeWithChromium('reference tutor page in chromium', () => {
  let tutor: RunningTutor;
  let browser: Browser;
  let client: ReturnType<typeof tutorClient>;
  let port: string;

  beforeAll(async () => {
    tutor = await startTutor({
      port: 0,
      env: { ...TEST_ENV, TUTOR_DATA_DIR: 'memory', TUTOR_BASE_DOMAIN: 'localhost' },
      startTimers: false,
    });
    port = new URL(tutor.url).port;
    client = tutorClient(tutor.url);
    await client.createTenant('hallym', '한림대학교', 'admin@hallym.ac.kr');
    await client.createTenant('gwangju', 'Gwangju University', 'admin@gwangju.ac.kr');
    const { token } = await client.adminSession('hallym', 'admin@hallym.ac.kr', 'browser password 1');
    await client.adminSession('gwangju', 'admin@gwangju.ac.kr', 'browser password 2');
    const course = await client.call('POST', '/api/courses', {
      tenant: 'hallym',
      token,
      body: { title: 'Orientation' },
    });
    await client.call('POST', `/api/courses/${course.body.id}/documents`, {
      tenant: 'hallym',
      token,
      body: {
        title: 'Library guide',
        content: 'The Hallym library opens at 9 am and closes at 10 pm. Books are lent for two weeks.',
      },
    });
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await tutor?.close();
  });

  async function open(url: string) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => (window as unknown as { tutorReady?: boolean }).tutorReady === true);
    return { page, context };
  }

  it('shows the tenant, logs in and streams an answer that cites the document', async () => {
    const { page, context } = await open(`${tutor.url}/?tenant=hallym`);
    expect(await page.textContent('#tenant-name')).toBe('한림대학교');
    expect(await page.title()).toContain('한림대학교');
    const brand = await page.evaluate(() =>
      getComputedStyle(document.documentElement).getPropertyValue('--brand'),
    );
    expect(brand).toMatch(/hsl/);
    await page.fill('#email', 'admin@hallym.ac.kr');
    await page.fill('#password', 'browser password 1');
    await page.click('#login button');
    await page.waitForSelector('#chat:not([hidden])');
    expect(await page.textContent('#who')).toContain('admin');
    expect(await page.locator('#course option').allTextContents()).toEqual(['All courses', 'Orientation']);
    await page.fill('#question', 'When does the library open?');
    await page.click('#ask button[type=submit]');
    await page.waitForFunction(() => (window as unknown as { tutorAnswered?: number }).tutorAnswered === 1);
    expect(await page.textContent('#answer')).toContain('9 am');
    expect(await page.locator('#sources li').allTextContents()).toEqual(['Library guide (part 1)']);
    expect(await page.textContent('#error')).toBe('');
    await context.close();
  });

  it('keeps institutions apart: another tenant’s page refuses these credentials', async () => {
    const { page, context } = await open(`${tutor.url}/?tenant=gwangju`);
    expect(await page.textContent('#tenant-name')).toBe('Gwangju University');
    await page.fill('#email', 'admin@hallym.ac.kr');
    await page.fill('#password', 'browser password 1');
    await page.click('#login button');
    await expect.poll(() => page.textContent('#error')).toContain('UNAUTHENTICATED');
    expect(await page.isHidden('#chat')).toBe(true);
    await context.close();
  });

  it('finds the tenant from the subdomain and logs in from a marketplace SSO fragment', async () => {
    const session = await client.call('POST', '/api/auth/login', {
      tenant: 'gwangju',
      body: { email: 'admin@gwangju.ac.kr', password: 'browser password 2' },
    });
    const { page, context } = await open(`http://gwangju.localhost:${port}/#token=${session.body.token}`);
    expect(await page.textContent('#tenant-name')).toBe('Gwangju University');
    await page.waitForSelector('#chat:not([hidden])');
    expect(page.url()).not.toContain('token=');
    expect(await page.locator('#course option').allTextContents()).toEqual(['All courses']);
    await context.close();
  });

  it('asks for an institution when the address names none', async () => {
    const { page, context } = await open(`${tutor.url}/`);
    expect(await page.textContent('#status')).toContain('No institution');
    expect(await page.isHidden('#login')).toBe(true);
    await context.close();
  });
});
