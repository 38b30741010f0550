import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeWithChromium, launchChromium } from '@mt-paas/test-env';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';

/**
 * `@mt-paas/middleware/client` in a real browser: Debian's chromium (driven by playwright-core) loads
 * the built `dist/client.js` from a local page, and the page's fetch calls reach the same local server,
 * which records the `X-Tenant-ID` header each call carried.
 */

const CLIENT_BUNDLE = new URL('../dist/client.js', import.meta.url);
/** Any host under it resolves to 127.0.0.1 inside chromium (--host-resolver-rules). */
const BASE_DOMAIN = 'tutor.test';

/** The tutor-like page: detects the tenant and calls the API through the helper. */
const PAGE = `<!doctype html>
<html>
  <head><meta charset="utf-8"><title>tenant fetch</title></head>
  <body>
    <script type="module">
      import { createTenantFetch, detectTenant } from '/dist/client.js';
      const api = createTenantFetch({ baseDomain: '${BASE_DOMAIN}' });
      window.callApi = async (label) => {
        const response = await api('/api/echo?label=' + encodeURIComponent(label), {
          headers: { accept: 'application/json' },
        });
        return response.json();
      };
      window.detected = detectTenant({ baseDomain: '${BASE_DOMAIN}' }) ?? null;
      window.helperReady = true;
    </script>
  </body>
</html>`;

interface Received {
  label: string;
  host: string | undefined;
  tenant: string | null;
}

describeWithChromium('browser helper in chromium', () => {
  const received: Received[] = [];
  let server: http.Server | undefined;
  let browser: Browser | undefined;
  let port = 0;

  beforeAll(async () => {
    if (!existsSync(CLIENT_BUNDLE)) {
      throw new Error(
        'dist/client.js is missing: run `pnpm --filter @mt-paas/middleware build` before the browser test.',
      );
    }
    const bundle = await readFile(CLIENT_BUNDLE, 'utf8');
    server = http.createServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://localhost');
      if (url.pathname === '/page.html') {
        response.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'cache-control': 'no-store',
        });
        response.end(PAGE);
      } else if (url.pathname === '/dist/client.js') {
        response.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
        response.end(bundle);
      } else if (url.pathname === '/api/echo') {
        const header = request.headers['x-tenant-id'];
        const tenant = typeof header === 'string' ? header : null;
        received.push({ label: url.searchParams.get('label') ?? '', host: request.headers.host, tenant });
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ tenant }));
      } else {
        response.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(0, '127.0.0.1', () => resolve());
    });
    port = (server.address() as AddressInfo).port;
    browser = await launchChromium([`--host-resolver-rules=MAP *.${BASE_DOMAIN} 127.0.0.1`]);
  }, 30_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    if (server !== undefined) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server!.close(() => resolve()));
    }
  });

  /**
   * Opens the page at `host` + `search` (with an optional `tenant_id` cookie) in a fresh browser
   * context, calls the API through the helper, and returns what the page detected and what the
   * server received.
   */
  async function visit(label: string, options: { host: string; search?: string; cookie?: string }) {
    const context = await browser!.newContext();
    try {
      const origin = `http://${options.host}:${port}`;
      if (options.cookie !== undefined) {
        await context.addCookies([{ name: 'tenant_id', value: options.cookie, url: origin }]);
      }
      const page = await context.newPage();
      page.setDefaultTimeout(10_000);
      const pageErrors: string[] = [];
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.goto(`${origin}/page.html${options.search ?? ''}`);
      await page.waitForFunction(() => (globalThis as { helperReady?: boolean }).helperReady === true);
      const detected = await page.evaluate(() => (globalThis as { detected?: unknown }).detected);
      const answer = await page.evaluate(
        (callLabel) =>
          (globalThis as unknown as { callApi(label: string): Promise<{ tenant: string | null }> }).callApi(
            callLabel,
          ),
        label,
      );
      expect(pageErrors).toEqual([]);
      const atServer = received.filter((entry) => entry.label === label);
      expect(atServer).toHaveLength(1);
      expect(atServer[0]?.tenant).toBe(answer.tenant);
      return { detected, sent: atServer[0]?.tenant ?? null, host: atServer[0]?.host };
    } finally {
      await context.close();
    }
  }

  it('sends the tenant of ?tenant= as X-Tenant-ID', async () => {
    const result = await visit('query', { host: '127.0.0.1', search: '?tenant=univ_8' });
    expect(result).toMatchObject({ detected: { tenantId: 'univ_8', source: 'query' }, sent: 'univ_8' });
  });

  it('sends the tenant of the tenant_id cookie, and prefers ?tenant= over it', async () => {
    const fromCookie = await visit('cookie', { host: '127.0.0.1', cookie: 'univ_7' });
    expect(fromCookie).toMatchObject({
      detected: { tenantId: 'univ_7', source: 'cookie' },
      sent: 'univ_7',
    });
    const both = await visit('query-over-cookie', {
      host: '127.0.0.1',
      search: '?tenant=univ_9',
      cookie: 'univ_7',
    });
    expect(both).toMatchObject({ detected: { source: 'query' }, sent: 'univ_9' });
  });

  it('sends the tenant of the subdomain under the base domain', async () => {
    const result = await visit('subdomain', { host: `univ8.${BASE_DOMAIN}` });
    expect(result).toMatchObject({
      detected: { tenantId: 'univ8', source: 'subdomain' },
      sent: 'univ8',
      host: `univ8.${BASE_DOMAIN}:${port}`,
    });
    const ignored = await visit('www', { host: `www.${BASE_DOMAIN}` });
    expect(ignored).toMatchObject({ detected: null, sent: null });
  });

  it('never sends a malformed tenant (query, cookie or subdomain)', async () => {
    const cases = [
      {
        label: 'bad-query',
        host: '127.0.0.1',
        search: `?tenant=${encodeURIComponent("univ_8'; DROP TABLE x;--")}`,
      },
      { label: 'bad-case', host: '127.0.0.1', search: '?tenant=UNIV_8' },
      { label: 'bad-cookie', host: '127.0.0.1', cookie: '..%2Fetc' },
      { label: 'bad-subdomain', host: `univ-8.${BASE_DOMAIN}` },
      { label: 'short-subdomain', host: `u.${BASE_DOMAIN}` },
    ];
    for (const { label, ...options } of cases) {
      const result = await visit(label, options);
      expect({ label, detected: result.detected, sent: result.sent }).toEqual({
        label,
        detected: null,
        sent: null,
      });
    }
  });
});
