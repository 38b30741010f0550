/** Signed marketplace deliveries, as a marketplace sends them (Standard Webhooks over the events route). */
import { randomUUID } from 'node:crypto';
import { EVENTS_ROUTE, generateWebhookSecret, signWebhook } from '@mt-paas/marketplace';
import type { FastifyInstance } from 'fastify';

export const WEBHOOK_SECRET = generateWebhookSecret();

let clock = Date.now();

/** Delivers one event; each later call carries a later event time (events of a kind apply in order). */
export async function deliver(app: FastifyInstance, type: string, data: Record<string, unknown>) {
  clock += 1000;
  const body = JSON.stringify({ type, version: 1, timestamp: new Date(clock).toISOString(), data });
  const headers = signWebhook({
    id: `msg_${randomUUID()}`,
    timestamp: new Date(),
    body,
    secrets: [WEBHOOK_SECRET],
  });
  return app.inject({
    method: 'POST',
    url: EVENTS_ROUTE,
    headers: { ...headers, 'content-type': 'application/json' },
    payload: body,
  });
}

/** `tenant.provision_requested` data for a tenant. */
export function provisionData(tenantId: string, plan = 'professional') {
  return {
    tenant_id: tenantId,
    tenant_name: `University ${tenantId}`,
    admin_email: `admin@${tenantId}.ac.kr`,
    application_id: `app-${tenantId}`,
    application_kind: 'service',
    plan,
  };
}

/** Polls `check` until it holds (a deadline, never a timing assertion). */
export async function eventually(check: () => Promise<boolean>, what: string, deadlineMs = 10_000) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
