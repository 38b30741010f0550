import { timingSafeEqual } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { MtPaasError } from '@mt-paas/context';
import type { SqlDriver } from '@mt-paas/db';
import { decodeWebhookSecret } from '@mt-paas/marketplace';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { z } from 'zod';
import { consolePage } from './console.js';
import { createFaultSwitch, type FaultSwitch, faultsSchema } from './faults.js';
import { createMarket, type Market, type MarketOptions } from './market.js';
import type { Db, ServiceRow } from './outbox.js';

/** Options of {@link buildServer}. */
export interface MarketServerOptions extends Omit<MarketOptions, 'db' | 'faults'> {
  driver: SqlDriver;
  /** Milliseconds between dispatcher rounds (and expiry sweeps); 0 = only on `POST /sim/v1/dispatch`. @default 250 */
  pollMs?: number;
  /** Fastify's logger. @default false */
  logger?: boolean;
}

/** The simulator's HTTP server (not listening yet) with its market. */
export interface MarketServer {
  app: FastifyInstance;
  market: Market;
  faults: FaultSwitch;
  /** Starts the dispatcher and the expiry sweep. */
  startWorkers(): void;
  close(): Promise<void>;
}

const serviceId = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9_.-]+$/, { error: 'letters, digits, "_", "-" or "."' });
const tenantId = z.string().min(1).max(100);
const id = z.coerce.number().int().positive();
const isoDate = z.iso.datetime({ offset: true });
const secret = z.string().refine(
  (value) => {
    try {
      decodeWebhookSecret(value);
      return true;
    } catch {
      return false;
    }
  },
  { error: 'expected "whsec_" followed by at least 16 base64-encoded bytes' },
);

// Report bodies: exactly what @mt-paas/marketplace's client sends (unknown fields are ignored).
const heartbeatBody = z.object({
  service_id: z.string().optional(),
  status: z.enum(['healthy', 'degraded', 'unhealthy']),
  active_tenants: z.array(z.string()).max(100_000).default([]),
  metrics: z.record(z.string(), z.unknown()).default({}),
  timestamp: z.string().optional(),
});
const usageBody = z.object({
  service_id: z.string().optional(),
  records: z
    .array(
      z.object({
        tenant_id: z.string().min(1).max(100),
        meter: z.string().min(1).max(100),
        quantity: z.number().finite(),
        at: isoDate,
        period_start: z.string().nullish(),
        idempotency_key: z.string().min(1).max(500),
        attributes: z.record(z.string(), z.unknown()).optional(),
      }),
    )
    .min(1)
    .max(10_000),
});
const statusBody = z.object({
  service_id: z.string().optional(),
  tenant_id: z.string().min(1).max(100),
  status: z.string().min(1).max(40),
  reason: z.string().max(500).nullish(),
  timestamp: isoDate,
});
const auditBody = z.object({
  service_id: z.string().min(1),
  alert_type: z.string().min(1).max(200),
  severity: z.enum(['low', 'medium', 'high', 'critical']),
  details: z.record(z.string(), z.unknown()).default({}),
  timestamp: isoDate,
});

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  return match?.[1];
}

function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** A service as the API shows it (its secrets too: the simulator is a local tool, and tests need them). */
function serviceView(row: ServiceRow) {
  return row;
}

/**
 * The simulator: the market's endpoints that services call (`/api/v1/…`, the JWKS), the REST API
 * for scripts and tests (`/sim/v1/…`, OpenAPI at `/docs`), and the console (`/`).
 */
export async function buildServer(options: MarketServerOptions): Promise<MarketServer> {
  const faults = createFaultSwitch();
  const db = options.driver.db as Db;
  const market = createMarket({ ...options, db, faults });
  await market.sso.ensureKey();

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: 1_048_576,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // A POST without a body (curl -X POST …) is an empty object: the optional fields take their defaults.
  app.addHook('preValidation', async (request) => {
    if (request.body === null || request.body === undefined) request.body = {};
  });
  app.setErrorHandler((error, _request, reply) => {
    if (hasZodFastifySchemaValidationErrors(error)) {
      const issues = error.validation
        .slice(0, 5)
        .map(
          (issue) =>
            `${issue.instancePath === '' ? 'body' : issue.instancePath.slice(1).replaceAll('/', '.')}: ${issue.message}`,
        )
        .join('; ');
      return reply.status(400).send({
        error: {
          code: 'INVALID_REQUEST',
          message: `Invalid ${error.validationContext ?? 'request'}: ${issues}.`,
        },
      });
    }
    if (MtPaasError.isInstance(error)) {
      if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
      return reply.status(error.httpStatus).send(error.toJSON());
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      return reply
        .status(status)
        .send({ error: { code: 'INVALID_REQUEST', message: (error as Error).message } });
    }
    console.error('[market-sim] request failed:', error);
    return reply
      .status(500)
      .send({ error: { code: 'INTERNAL', message: 'The simulator failed; see its log.' } });
  });

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'mt-paas market simulator',
        description:
          'A marketplace for local development and end-to-end tests of services built on @mt-paas/marketplace.',
        version: '0.0.0',
      },
      tags: [
        { name: 'market', description: 'What services call (seed 001 §5, mt-paas v1 reports)' },
        {
          name: 'sim',
          description: 'Scripting the market: services, members, applications, tenants, deliveries',
        },
        { name: 'sso', description: 'The SSO issuer' },
        { name: 'faults', description: 'Fault injection' },
      ],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  // ─── what services call ─────────────────────────────────────────────────
  /** Bearer API key of the service named in the path (or the body); fault injection first. */
  async function reportGate(
    request: FastifyRequest,
    reply: FastifyReply,
    named: string,
  ): Promise<ServiceRow | undefined> {
    const fault = faults.takeReportFault(new Date());
    if (fault.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
    if (fault.status !== undefined) {
      if (fault.retryAfterSeconds !== undefined) reply.header('retry-after', String(fault.retryAfterSeconds));
      await reply
        .status(fault.status)
        .send({ error: { code: 'SERVICE_UNAVAILABLE', message: 'Injected fault (PUT /sim/v1/faults).' } });
      return undefined;
    }
    const key = bearer(request);
    const svc = key === undefined ? undefined : await market.serviceByApiKey(key);
    if (svc === undefined || key === undefined || !sameSecret(key, svc.apiKey)) {
      throw new MtPaasError(
        'UNAUTHENTICATED',
        'Send the service\'s API key as "Authorization: Bearer <api_key>" (see GET /sim/v1/services).',
      );
    }
    if (svc.id !== named) {
      throw new MtPaasError('FORBIDDEN', `This API key belongs to service "${svc.id}", not "${named}".`);
    }
    return svc;
  }

  const idempotencyKey = (request: FastifyRequest) => {
    const value = request.headers['idempotency-key'];
    return typeof value === 'string' && value !== '' ? value : undefined;
  };

  app.post(
    '/api/v1/services/:serviceId/heartbeat',
    { schema: { tags: ['market'], params: z.object({ serviceId }), body: heartbeatBody } },
    async (request, reply) => {
      const svc = await reportGate(request, reply, request.params.serviceId);
      if (svc === undefined) return reply;
      await market.heartbeat(svc.id, request.body);
      return { ok: true };
    },
  );

  app.post(
    '/api/v1/services/:serviceId/usage',
    { schema: { tags: ['market'], params: z.object({ serviceId }), body: usageBody } },
    async (request, reply) => {
      const svc = await reportGate(request, reply, request.params.serviceId);
      if (svc === undefined) return reply;
      let result = { accepted: 0, duplicates: request.body.records.length };
      const processed = await market.once(svc.id, idempotencyKey(request), request.url, async (tx) => {
        result = await market.recordUsage(tx, svc.id, request.body.records);
      });
      return { ok: true, duplicate: !processed, ...result };
    },
  );

  app.post(
    '/api/v1/services/:serviceId/tenants/:tenantId/status',
    { schema: { tags: ['market'], params: z.object({ serviceId, tenantId }), body: statusBody } },
    async (request, reply) => {
      const svc = await reportGate(request, reply, request.params.serviceId);
      if (svc === undefined) return reply;
      if (request.body.tenant_id !== request.params.tenantId) {
        throw new MtPaasError('INVALID_REQUEST', "The body's tenant_id differs from the tenant in the path.");
      }
      const processed = await market.once(svc.id, idempotencyKey(request), request.url, (tx) =>
        market.recordStatus(tx, svc.id, request.body),
      );
      return { ok: true, duplicate: !processed };
    },
  );

  app.get(
    '/api/v1/services/:serviceId/tenants/:tenantId/subscription',
    { schema: { tags: ['market'], params: z.object({ serviceId, tenantId }) } },
    async (request, reply) => {
      const svc = await reportGate(request, reply, request.params.serviceId);
      if (svc === undefined) return reply;
      const subscription = await market.subscription(svc.id, request.params.tenantId);
      if (subscription === undefined) {
        throw new MtPaasError(
          'TENANT_NOT_FOUND',
          `The market has no subscription of "${request.params.tenantId}" on "${svc.id}".`,
        );
      }
      return subscription;
    },
  );

  app.post(
    '/api/v1/audit/alerts',
    { schema: { tags: ['market'], body: auditBody } },
    async (request, reply) => {
      const svc = await reportGate(request, reply, request.body.service_id);
      if (svc === undefined) return reply;
      const processed = await market.once(svc.id, idempotencyKey(request), request.url, (tx) =>
        market.recordAuditAlert(tx, request.body),
      );
      return { ok: true, duplicate: !processed };
    },
  );

  app.get('/.well-known/jwks.json', { schema: { tags: ['sso'] } }, async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=60');
    return market.sso.jwks();
  });

  // ─── the REST API ───────────────────────────────────────────────────────
  const tags = ['sim'];
  app.get('/sim/v1/plans', { schema: { tags } }, async () => ({ plans: market.plans() }));

  app.post(
    '/sim/v1/services',
    {
      schema: {
        tags,
        body: z.strictObject({
          id: serviceId,
          name: z.string().min(1).max(200).optional(),
          base_url: z.url({ protocol: /^https?$/ }),
          protocol: z.enum(['legacy', 'signed']).default('signed'),
          webhook_secrets: z.array(secret).max(5).optional(),
          legacy_secret: z.string().min(8).max(500).nullish(),
          api_key: z.string().min(8).max(500).optional(),
          sso_callback_path: z.string().startsWith('/').optional(),
        }),
      },
    },
    async (request, reply) => {
      const body = request.body;
      const row = await market.registerService({
        id: body.id,
        baseUrl: body.base_url,
        protocol: body.protocol,
        ...(body.name === undefined ? {} : { name: body.name }),
        ...(body.webhook_secrets === undefined ? {} : { webhookSecrets: body.webhook_secrets }),
        ...(body.legacy_secret === undefined ? {} : { legacySecret: body.legacy_secret }),
        ...(body.api_key === undefined ? {} : { apiKey: body.api_key }),
        ...(body.sso_callback_path === undefined ? {} : { ssoCallbackPath: body.sso_callback_path }),
      });
      return reply.status(201).send(serviceView(row));
    },
  );
  app.get('/sim/v1/services', { schema: { tags } }, async () => ({
    services: (await market.listServices()).map((row) => ({ ...serviceView(row), health: row.health })),
  }));
  app.get(
    '/sim/v1/services/:serviceId',
    { schema: { tags, params: z.object({ serviceId }) } },
    async (request) => ({
      ...serviceView(await market.service(request.params.serviceId)),
      health: await market.health(request.params.serviceId),
    }),
  );

  app.post(
    '/sim/v1/institutions',
    {
      schema: {
        tags,
        body: z.strictObject({ id: z.string().min(1).max(100), name: z.string().min(1).max(200) }),
      },
    },
    async (request, reply) => reply.status(201).send(await market.createInstitution(request.body)),
  );
  app.get('/sim/v1/institutions', { schema: { tags } }, async () => ({
    institutions: await market.listInstitutions(),
  }));

  app.post(
    '/sim/v1/users',
    {
      schema: {
        tags,
        body: z.strictObject({
          email: z
            .string()
            .min(3)
            .max(320)
            .regex(/^[^\s@]+@[^\s@]+$/, { error: 'expected an e-mail address' }),
          name: z.string().min(1).max(200),
          institution_id: z.string().min(1).max(100).optional(),
        }),
      },
    },
    async (request, reply) => {
      const { email, name, institution_id } = request.body;
      const user = await market.createUser({
        email,
        name,
        ...(institution_id === undefined ? {} : { institutionId: institution_id }),
      });
      return reply.status(201).send(user);
    },
  );
  app.get('/sim/v1/users', { schema: { tags } }, async () => ({ users: await market.listUsers() }));
  app.delete('/sim/v1/users/:id', { schema: { tags, params: z.object({ id }) } }, async (request) =>
    market.deleteUser(request.params.id),
  );

  app.post(
    '/sim/v1/applications',
    {
      schema: {
        tags,
        body: z.strictObject({
          service_id: serviceId,
          user_id: z.number().int().positive(),
          kind: z.enum(['demo', 'service']),
          plan: z.string().min(1).max(64).optional(),
          tenant_id: z.string().min(1).max(100).optional(),
          demo_expires_at: isoDate.optional(),
        }),
      },
    },
    async (request, reply) => {
      const body = request.body;
      const application = await market.createApplication({
        serviceId: body.service_id,
        userId: body.user_id,
        kind: body.kind,
        ...(body.plan === undefined ? {} : { plan: body.plan }),
        ...(body.tenant_id === undefined ? {} : { tenantId: body.tenant_id }),
        ...(body.demo_expires_at === undefined ? {} : { demoExpiresAt: new Date(body.demo_expires_at) }),
      });
      return reply.status(201).send(application);
    },
  );
  app.get('/sim/v1/applications', { schema: { tags } }, async () => ({
    applications: await market.listApplications(),
  }));
  app.get('/sim/v1/applications/:id', { schema: { tags, params: z.object({ id }) } }, async (request) =>
    market.application(request.params.id),
  );
  app.post(
    '/sim/v1/applications/:id/approve',
    { schema: { tags, params: z.object({ id }) } },
    async (request) => market.approve(request.params.id),
  );
  const reasonBody = z.strictObject({ reason: z.string().min(1).max(500).optional() }).default({});
  app.post(
    '/sim/v1/applications/:id/reject',
    { schema: { tags, params: z.object({ id }), body: reasonBody } },
    async (request) => market.reject(request.params.id, request.body.reason),
  );
  app.post(
    '/sim/v1/applications/:id/cancel',
    { schema: { tags, params: z.object({ id }), body: reasonBody } },
    async (request) => market.cancel(request.params.id, request.body.reason),
  );

  app.get('/sim/v1/tenants', { schema: { tags } }, async () => ({ tenants: await market.listTenants() }));
  const tenantParams = z.object({ serviceId, tenantId });
  app.get(
    '/sim/v1/services/:serviceId/tenants/:tenantId',
    { schema: { tags, params: tenantParams } },
    async (request) => market.tenant(request.params.serviceId, request.params.tenantId),
  );
  app.post(
    '/sim/v1/services/:serviceId/tenants/:tenantId/block',
    {
      schema: {
        tags,
        params: tenantParams,
        body: z
          .strictObject({
            reason: z.string().min(1).max(200).default('blocked_by_market'),
            message: z.string().max(2000).optional(),
            grace_period_hours: z.number().nonnegative().max(8784).optional(),
          })
          .default({ reason: 'blocked_by_market' }),
      },
    },
    async (request) =>
      market.block(request.params.serviceId, request.params.tenantId, {
        reason: request.body.reason,
        ...(request.body.message === undefined ? {} : { message: request.body.message }),
        ...(request.body.grace_period_hours === undefined
          ? {}
          : { gracePeriodHours: request.body.grace_period_hours }),
      }),
  );
  app.post(
    '/sim/v1/services/:serviceId/tenants/:tenantId/unblock',
    {
      schema: {
        tags,
        params: tenantParams,
        body: z
          .strictObject({
            reason: z.string().min(1).max(200).optional(),
            message: z.string().max(2000).optional(),
          })
          .default({}),
      },
    },
    async (request) =>
      market.unblock(request.params.serviceId, request.params.tenantId, {
        ...(request.body.reason === undefined ? {} : { reason: request.body.reason }),
        ...(request.body.message === undefined ? {} : { message: request.body.message }),
      }),
  );
  app.post(
    '/sim/v1/services/:serviceId/tenants/:tenantId/plan',
    {
      schema: {
        tags,
        params: tenantParams,
        body: z.strictObject({ plan: z.string().min(1).max(64), expires_at: isoDate.nullish() }),
      },
    },
    async (request) =>
      market.changePlan(request.params.serviceId, request.params.tenantId, {
        plan: request.body.plan,
        ...(request.body.expires_at === undefined
          ? {}
          : { expiresAt: request.body.expires_at === null ? null : new Date(request.body.expires_at) }),
      }),
  );
  app.post('/sim/v1/expire', { schema: { tags } }, async () => ({ expired: await market.expireDue() }));

  app.get(
    '/sim/v1/deliveries',
    {
      schema: {
        tags,
        querystring: z.object({
          service_id: z.string().optional(),
          status: z.enum(['pending', 'held', 'delivered', 'failed', 'dropped']).optional(),
          limit: z.coerce.number().int().positive().max(1000).optional(),
        }),
      },
    },
    async (request) => ({
      deliveries: await market.listDeliveries({
        ...(request.query.service_id === undefined ? {} : { serviceId: request.query.service_id }),
        ...(request.query.status === undefined ? {} : { status: request.query.status }),
        ...(request.query.limit === undefined ? {} : { limit: request.query.limit }),
      }),
    }),
  );
  const deliveryParams = z.object({ id: z.string().min(1).max(100) });
  app.get('/sim/v1/deliveries/:id', { schema: { tags, params: deliveryParams } }, async (request) =>
    market.delivery(request.params.id),
  );
  app.post('/sim/v1/deliveries/:id/replay', { schema: { tags, params: deliveryParams } }, async (request) => {
    await market.outbox.replay(request.params.id);
    return market.delivery(request.params.id);
  });
  app.post('/sim/v1/dispatch', { schema: { tags } }, async () => ({
    attempts: await market.outbox.runOnce(),
  }));

  app.get(
    '/sim/v1/usage',
    {
      schema: {
        tags,
        querystring: z.object({ service_id: z.string().optional(), tenant_id: z.string().optional() }),
      },
    },
    async (request) => ({
      totals: await market.usageTotals({
        ...(request.query.service_id === undefined ? {} : { serviceId: request.query.service_id }),
        ...(request.query.tenant_id === undefined ? {} : { tenantId: request.query.tenant_id }),
      }),
    }),
  );
  app.get('/sim/v1/audit-alerts', { schema: { tags } }, async () => ({
    alerts: await market.listAuditAlerts(),
  }));
  app.get('/sim/v1/status-syncs', { schema: { tags } }, async () => ({
    syncs: await market.listStatusSyncs(),
  }));

  // ─── SSO ────────────────────────────────────────────────────────────────
  const ssoBody = z.strictObject({
    service_id: serviceId,
    user_id: z.coerce.number().int().positive(),
    tenant_id: z.string().min(1).max(100).optional(),
    roles: z.array(z.string().min(1).max(100)).max(20).optional(),
  });
  const openInput = (body: z.infer<typeof ssoBody>) => ({
    serviceId: body.service_id,
    userId: body.user_id,
    ...(body.tenant_id === undefined ? {} : { tenantId: body.tenant_id }),
    ...(body.roles === undefined ? {} : { roles: body.roles }),
  });
  app.post(
    '/sim/v1/sso/rotate',
    {
      schema: {
        tags: ['sso'],
        body: z.strictObject({ alg: z.enum(['RS256', 'ES256']).optional() }).default({}),
      },
    },
    async (request) => market.sso.rotate(request.body.alg),
  );
  app.post('/sim/v1/sso/tokens', { schema: { tags: ['sso'], body: ssoBody } }, async (request) => {
    const issued = await market.openAs(openInput(request.body));
    return {
      token: issued.token,
      kid: issued.kid,
      jti: issued.jti,
      expires_at: issued.expiresAt,
      url: issued.url,
    };
  });
  app.get(
    '/sim/v1/sso/open',
    { schema: { tags: ['sso'], querystring: ssoBody.omit({ roles: true }) } },
    async (request, reply) => {
      const issued = await market.openAs(openInput(request.query));
      return reply.redirect(issued.url, 302);
    },
  );

  // ─── faults ─────────────────────────────────────────────────────────────
  app.get('/sim/v1/faults', { schema: { tags: ['faults'] } }, async () => faults.get());
  app.put('/sim/v1/faults', { schema: { tags: ['faults'], body: faultsSchema } }, async (request) =>
    faults.set(request.body),
  );
  app.delete('/sim/v1/faults', { schema: { tags: ['faults'] } }, async () => {
    faults.clear();
    return faults.get();
  });

  // ─── the console ────────────────────────────────────────────────────────
  app.get('/', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/html; charset=utf-8').send(consolePage()),
  );

  let sweep: NodeJS.Timeout | undefined;
  return {
    app,
    market,
    faults,
    startWorkers() {
      const pollMs = options.pollMs ?? 250;
      if (pollMs <= 0) return;
      market.outbox.start(pollMs);
      sweep = setInterval(
        () => {
          market
            .expireDue()
            .catch((error: unknown) => console.error('[market-sim] expiry sweep failed:', error));
        },
        Math.max(pollMs, 5_000),
      );
      sweep.unref();
    },
    async close() {
      if (sweep !== undefined) clearInterval(sweep);
      await market.outbox.stop();
      await app.close();
      await options.driver.close();
    },
  };
}
