/**
 * The web page (`GET /`): finds the tenant (subdomain or `?tenant=`, with `@mt-paas/middleware/client`),
 * shows its name and branding, logs in (password, a marketplace SSO redirect `#token=…`, or a one-time
 * password link `#reset=…`) and chats with the tutor, reading the SSE stream with `eventsource-parser`.
 * Both browser modules are served as they are published (each is one dependency-free ES module).
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Tutor } from '../tutor.js';

const PUBLIC = {
  config: { mtPaas: { tenant: 'host-only' as const, auth: 'none' as const } },
  schema: { hide: true },
};

/** `metadata.branding` of a tenant (and the body of `PATCH /api/tenant/branding`). */
export const BrandingInput = z.strictObject({
  primary_color: z
    .string()
    .regex(/^#[0-9a-fA-F]{6}$/, { error: 'must be a colour like #2d5b8a' })
    .optional(),
  logo_url: z
    .url({ protocol: /^https$/, error: 'must be an https URL' })
    .max(500)
    .optional(),
  welcome: z.string().trim().min(1).max(300).optional(),
});

/** A tenant's colour when it set none: a stable hue from its id. */
function defaultColor(tenantId: string): string {
  let hash = 0;
  for (const char of tenantId) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360} 55% 38%)`;
}

/** The branding a tenant's page shows: `metadata.branding` (validated), else defaults from its id. */
export function brandingOf(tenant: {
  id: string;
  name: string;
  metadata: Readonly<Record<string, unknown>>;
}) {
  const parsed = BrandingInput.safeParse(tenant.metadata.branding ?? {});
  const branding = parsed.success ? parsed.data : {};
  return {
    primaryColor: branding.primary_color ?? defaultColor(tenant.id),
    logoUrl: branding.logo_url ?? null,
    welcome: branding.welcome ?? `Welcome to the ${tenant.name} tutor.`,
  };
}

export async function pageRoutes(
  app: FastifyInstance,
  tutor: Tutor,
  options: { baseDomain?: string | undefined },
) {
  const [tenantClient, sseParser] = await Promise.all([
    readFile(fileURLToPath(import.meta.resolve('@mt-paas/middleware/client')), 'utf8'),
    readFile(fileURLToPath(import.meta.resolve('eventsource-parser')), 'utf8'),
  ]);
  const page = PAGE.replace(
    '__TUTOR_SETTINGS__',
    JSON.stringify({
      baseDomain: options.baseDomain ?? null,
      service: tutor.mt.config.service.name,
    }).replaceAll('<', '\\u003c'),
  );

  app.get('/', PUBLIC, async (_req, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header(
        'content-security-policy',
        "default-src 'self'; img-src 'self' https: data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'",
      )
      .send(page),
  );
  app.get('/assets/tenant-client.js', PUBLIC, async (_req, reply) =>
    reply.type('text/javascript; charset=utf-8').send(tenantClient),
  );
  app.get('/assets/eventsource-parser.js', PUBLIC, async (_req, reply) =>
    reply.type('text/javascript; charset=utf-8').send(sseParser),
  );
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Tutor</title>
  <style>
    :root { --brand: #2d5b8a; }
    body { font: 15px/1.5 system-ui, sans-serif; margin: 0; color: #1d1d1f; }
    header { background: var(--brand); color: #fff; padding: .8rem 1.2rem; display: flex; align-items: center; gap: .8rem; }
    header img { height: 32px; }
    header h1 { font-size: 1.2rem; margin: 0; }
    main { max-width: 46rem; margin: 1.5rem auto; padding: 0 1rem; }
    input, select, textarea, button { font: inherit; padding: .4rem .5rem; margin: .2rem 0; }
    input, select, textarea { width: 100%; box-sizing: border-box; }
    button { background: var(--brand); color: #fff; border: 0; border-radius: 4px; cursor: pointer; }
    #answer { white-space: pre-wrap; background: #f4f5f7; padding: .8rem; border-radius: 6px; min-height: 2rem; }
    .error { color: #a11; } .muted { color: #666; font-size: .9em; }
  </style>
</head>
<body>
  <header><img id="logo" alt="" hidden><h1 id="tenant-name">Tutor</h1><span id="who" class="muted"></span></header>
  <main>
    <p id="welcome"></p>
    <p id="status">Finding your institution…</p>
    <form id="login" hidden>
      <h2>Log in</h2>
      <input id="email" type="email" autocomplete="username" placeholder="Email" required>
      <input id="password" type="password" autocomplete="current-password" placeholder="Password" required>
      <button type="submit">Log in</button>
      <p class="muted">Or open this tutor from the marketplace to log in with your marketplace account.</p>
    </form>
    <form id="set-password" hidden>
      <h2>Choose your password</h2>
      <input id="new-password" type="password" autocomplete="new-password" placeholder="New password (10+ characters)" required>
      <button type="submit">Save and log in</button>
    </form>
    <section id="chat" hidden>
      <h2>Ask the tutor</h2>
      <select id="course"><option value="">All courses</option></select>
      <form id="ask">
        <textarea id="question" rows="2" placeholder="Your question" required></textarea>
        <button type="submit">Ask</button> <button type="button" id="logout">Log out</button>
      </form>
      <div id="answer" aria-live="polite"></div>
      <ol id="sources"></ol>
    </section>
    <p id="error" class="error"></p>
  </main>
  <script>window.TUTOR = __TUTOR_SETTINGS__;</script>
  <script type="module">
    import { createTenantFetch, detectTenant } from '/assets/tenant-client.js';
    import { createParser } from '/assets/eventsource-parser.js';

    const settings = window.TUTOR;
    const options = settings.baseDomain ? { baseDomain: settings.baseDomain } : {};
    const found = detectTenant({ ...options, persist: true });
    const tenantFetch = createTenantFetch(options);
    const $ = (id) => document.getElementById(id);
    const tokenKey = found ? 'tutor-token:' + found.tenantId : 'tutor-token';
    let token = sessionStorage.getItem(tokenKey);

    function fail(error) { $('error').textContent = error.message; }
    function api(path, init = {}) {
      const headers = new Headers(init.headers);
      if (token) headers.set('authorization', 'Bearer ' + token);
      return tenantFetch(path, { ...init, headers });
    }
    async function json(path, init) {
      const response = await api(path, init);
      const body = response.status === 204 ? null : await response.json();
      if (!response.ok) throw new Error(body && body.error ? body.error.code + ': ' + body.error.message : response.statusText);
      return body;
    }
    function setSession(session) {
      token = session.token;
      sessionStorage.setItem(tokenKey, token);
    }

    async function showTenant() {
      const tenant = await json('/api/tenant');
      document.title = tenant.name + ' — ' + settings.service;
      $('tenant-name').textContent = tenant.name;
      $('welcome').textContent = tenant.branding.welcome;
      document.documentElement.style.setProperty('--brand', tenant.branding.primaryColor);
      if (tenant.branding.logoUrl) { $('logo').src = tenant.branding.logoUrl; $('logo').hidden = false; }
      $('status').textContent = '';
    }

    async function showChat() {
      const me = await json('/api/auth/me');
      $('who').textContent = me.name + ' (' + me.role + ')';
      const courses = await json('/api/courses');
      $('course').replaceChildren(new Option('All courses', ''), ...courses.map((course) => new Option(course.title, course.id)));
      $('login').hidden = true; $('set-password').hidden = true; $('chat').hidden = false;
    }

    async function ask(question, courseId) {
      $('answer').textContent = ''; $('sources').replaceChildren(); $('error').textContent = '';
      const response = await api('/api/chat', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify(courseId ? { question, courseId } : { question }),
      });
      if (!response.ok) {
        const body = await response.json();
        throw new Error(body.error.code + ': ' + body.error.message);
      }
      const parser = createParser({
        onEvent(event) {
          const data = JSON.parse(event.data);
          if (event.event === 'token') $('answer').textContent += data.text;
          else if (event.event === 'done') {
            $('answer').textContent = data.answer;
            $('sources').replaceChildren(...data.sources.map((source) => {
              const item = document.createElement('li');
              item.textContent = source.title + ' (part ' + (source.chunk + 1) + ')';
              return item;
            }));
            window.tutorAnswered = (window.tutorAnswered || 0) + 1;
          } else if (event.event === 'error') fail(new Error(data.error.code + ': ' + data.error.message));
        },
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(value);
      }
    }

    async function start() {
      if (found === undefined) {
        $('status').textContent = 'No institution in this address: open the page from the marketplace, or with ?tenant=<your institution id>.';
        return;
      }
      await showTenant();
      const hash = new URLSearchParams(location.hash.slice(1));
      history.replaceState(null, '', location.pathname + location.search);
      if (hash.get('token')) setSession({ token: hash.get('token') });
      if (hash.get('reset')) {
        $('set-password').hidden = false;
        $('set-password').addEventListener('submit', (event) => {
          event.preventDefault();
          json('/api/auth/password', { method: 'POST', headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ resetToken: hash.get('reset'), password: $('new-password').value }) })
            .then((session) => { setSession(session); return showChat(); }).catch(fail);
        });
        return;
      }
      if (token) {
        try { await showChat(); return; } catch { token = null; sessionStorage.removeItem(tokenKey); }
      }
      $('login').hidden = false;
    }

    $('login').addEventListener('submit', (event) => {
      event.preventDefault();
      json('/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: $('email').value, password: $('password').value }) })
        .then((session) => { setSession(session); $('error').textContent = ''; return showChat(); }).catch(fail);
    });
    $('ask').addEventListener('submit', (event) => {
      event.preventDefault();
      ask($('question').value, $('course').value).catch(fail);
    });
    $('logout').addEventListener('click', () => {
      sessionStorage.removeItem(tokenKey); token = null;
      $('chat').hidden = true; $('login').hidden = false; $('who').textContent = '';
    });
    start().catch(fail).finally(() => { window.tutorReady = true; });
  </script>
</body>
</html>`;
