/** A small HTTP client of the tutor for the tests: the marketplace's tenant creation, logins, SSE chat. */
import { randomUUID } from 'node:crypto';
import { signWebhook } from '@mt-paas/marketplace';
import { createParser } from 'eventsource-parser';

export const MARKET_API_KEY = 'market_key_for_tests_0123456789';
export const SUPERADMIN_API_KEY = 'superadmin_key_for_tests_0123456789';
export const WEBHOOK_SECRET = `whsec_${Buffer.from('webhook secret for the tests!!').toString('base64')}`;
export const TEST_ENV = {
  WEBHOOK_SECRET,
  MARKET_API_KEY,
  SUPERADMIN_API_KEY,
  JWT_SECRET: 'jwt_secret_for_tests_0123456789_abcdef',
  LOG_LEVEL: 'warn',
  MARKET_URL: '',
};

/** Parsed JSON of an answer: the tests read fields the schemas guarantee. */
// biome-ignore lint/suspicious/noExplicitAny: test-side JSON, checked by the assertions
type Json = any;

export interface Answer {
  status: number;
  body: Json;
  headers: Headers;
}

export function tutorClient(url: string) {
  async function call(
    method: string,
    path: string,
    options: { tenant?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<Answer> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.tenant !== undefined) headers['x-tenant-id'] = options.tenant;
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${url}${path}`, { method, headers, body, redirect: 'manual' });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {}
    return { status: response.status, body: parsed, headers: response.headers };
  }

  /** What the marketplace sends on approval (seed 002 §7.1.2), with the service's API key. */
  async function createTenant(tenantId: string, name: string, adminEmail: string, plan?: string) {
    const created = await call('POST', '/api/tenant/create', {
      headers: { 'x-api-key': MARKET_API_KEY },
      body: {
        tenant_id: tenantId,
        tenant_name: name,
        admin_email: adminEmail,
        admin_name: `${name} admin`,
        application_id: 1,
        application_kind: 'service',
        ...(plan === undefined ? {} : { plan }),
      },
    });
    if (created.status !== 200)
      throw new Error(`tenant create answered ${created.status}: ${JSON.stringify(created.body)}`);
    return created.body;
  }

  /** The operator's password link, used to set the admin's password: the documented first login. */
  async function adminSession(tenantId: string, email: string, password = 'a long test password') {
    const link = await call('POST', `/api/superadmin/tenants/${tenantId}/password-reset`, {
      headers: { 'x-api-key': SUPERADMIN_API_KEY },
      body: { email },
    });
    if (link.status !== 201)
      throw new Error(`password-reset answered ${link.status}: ${JSON.stringify(link.body)}`);
    const session = await call('POST', '/api/auth/password', {
      tenant: tenantId,
      body: { resetToken: link.body.resetToken, password },
    });
    if (session.status !== 200)
      throw new Error(`password set answered ${session.status}: ${JSON.stringify(session.body)}`);
    return session.body as { token: string; user: { id: string; role: string } };
  }

  /** POST /api/chat, read as SSE with eventsource-parser. */
  async function chat(tenant: string, token: string, body: { question: string; courseId?: string }) {
    const response = await fetch(`${url}/api/chat`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-tenant-id': tenant,
        authorization: `Bearer ${token}`,
      },
      body: JSON.stringify(body),
    });
    const events: { event: string | undefined; data: Json }[] = [];
    const parser = createParser({
      onEvent: (event) => events.push({ event: event.event, data: JSON.parse(event.data) }),
    });
    const text = await response.text();
    if (!(response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      return {
        status: response.status,
        contentType: response.headers.get('content-type'),
        events,
        error: JSON.parse(text),
        done: undefined,
      };
    }
    parser.feed(text);
    const done = events.find((event) => event.event === 'done')?.data;
    return {
      status: response.status,
      contentType: response.headers.get('content-type'),
      events,
      done,
      error: undefined,
    };
  }

  /** A signed `subscription.updated` (what the market sends on a plan change). */
  async function setPlan(
    tenantId: string,
    plan: string,
    features: Record<string, boolean>,
    limits?: { rpm?: number; quotas?: Record<string, unknown> },
  ) {
    const body = JSON.stringify({
      type: 'subscription.updated',
      version: 1,
      timestamp: new Date().toISOString(),
      data: { tenant_id: tenantId, plan, features, ...(limits === undefined ? {} : { limits }) },
    });
    const headers = signWebhook({
      id: `msg_${randomUUID()}`,
      timestamp: new Date(),
      body,
      secrets: [WEBHOOK_SECRET],
    });
    const answer = await call('POST', '/api/mt-paas/v1/events', {
      body,
      headers: { ...headers } as Record<string, string>,
    });
    if (answer.status !== 200)
      throw new Error(`subscription.updated answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  }

  return { call, createTenant, adminSession, chat, setPlan };
}
