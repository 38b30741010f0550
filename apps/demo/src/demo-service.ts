/**
 * A small tenant-aware service on @mt-paas/framework's one-line setup, on embedded defaults:
 * PGlite for the catalog and the tenant tables (row mode, RLS), in-process rate limits and quotas,
 * the deterministic local LLM and an in-memory vector store. Nothing to install, nothing to start.
 */
import { fileURLToPath } from 'node:url';
import { currentTenant, MtPaasError, requireTenant } from '@mt-paas/context';
import { createServiceFramework } from '@mt-paas/framework';
import { requireFeature } from '@mt-paas/middleware/fastify';
import { desc } from 'drizzle-orm';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { DEMO_PAGE, readTenantClientBundle } from './page.js';
import { notes } from './schema.js';

/** The demo's mt-paas.yaml: everything not written here takes the embedded defaults. */
export const DEMO_CONFIG = `
service:
  id: demo_tutor
  name: mt-paas demo tutor
marketplace:
  enabled: false
tenant_identification:
  methods:
    - type: header
      name: X-Tenant-ID
    - type: query_param
      name: tenant
features:
  defaults:
    ai_chat: true
    quiz: false
plans:
  free:
    rpm: 12
  professional:
    features:
      quiz: true
`;

/** Tenants the demo creates in its catalog. */
export const DEMO_TENANTS = [
  { id: 'univ_8', name: 'Gwangju University', plan: 'professional', status: 'active' },
  { id: 'demo_7', name: 'Demo College', plan: 'free', status: 'active' },
  { id: 'closed_u', name: 'Closed University', plan: 'starter', status: 'suspended' },
] as const;

export interface DemoService {
  app: FastifyInstance;
  /** Base URL once listening. */
  url: string;
  close(): Promise<void>;
}

export interface DemoServiceOptions {
  /** Where PGlite keeps its data. @default 'memory' */
  dataDir?: string;
  /** Port to listen on. @default 0 (a free port) */
  port?: number;
  /** pino level of the request logs. @default 'warn' */
  logLevel?: string;
}

const migrationsFolder = fileURLToPath(new URL('../drizzle', import.meta.url));

export async function startDemoService(options: DemoServiceOptions = {}): Promise<DemoService> {
  // The one-line setup: catalog + tenant tables on PGlite (row mode, RLS), in-process limits, the local
  // LLM and an in-memory vector store per tenant — everything from DEMO_CONFIG.
  const mt = await createServiceFramework({
    config: DEMO_CONFIG,
    env: {},
    dataDir: options.dataDir ?? 'memory',
    migrationsFolder,
    logger: pino({ level: options.logLevel ?? 'warn' }),
  });
  for (const tenant of DEMO_TENANTS) {
    const plan = mt.config.plans[tenant.plan];
    await mt.onboard({
      id: tenant.id,
      name: tenant.name,
      plan: tenant.plan,
      entitlements: {
        plan: tenant.plan,
        features: { ...mt.config.features.defaults, ...plan?.features },
        limits: { rpm: plan?.rpm ?? null, quotas: plan?.quotas ?? {} },
        source: 'demo',
      },
    });
    if (tenant.status === 'suspended') {
      await mt.provisioner.suspend(tenant.id, { reason: 'subscription not renewed' });
    }
  }

  const app = Fastify();
  await app.register(mt.fastify);

  app.get('/health', { config: { mtPaas: { tenant: 'optional' } } }, async () => ({ ok: true }));

  // The web page and the browser helper it loads need no tenant: the page finds it itself.
  const clientBundle = await readTenantClientBundle();
  app.get('/', { config: { mtPaas: { tenant: 'host-only', auth: 'none' } } }, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').send(DEMO_PAGE),
  );
  app.get(
    '/assets/tenant-client.js',
    { config: { mtPaas: { tenant: 'host-only', auth: 'none' } } },
    async (_req, reply) => reply.type('text/javascript; charset=utf-8').send(clientBundle),
  );

  app.get('/notes', async (req) =>
    req.tenantDb((tx) =>
      tx.select({ title: notes.title, body: notes.body }).from(notes).orderBy(desc(notes.createdAt)),
    ),
  );

  app.post<{ Body: { title?: unknown; body?: unknown } }>('/notes', async (req, reply) => {
    const { title, body } = req.body ?? {};
    if (typeof title !== 'string' || typeof body !== 'string' || title === '' || body === '') {
      throw new MtPaasError(
        'INVALID_REQUEST',
        'Send a JSON body { "title": "…", "body": "…" } with both fields set.',
      );
    }
    const [note] = await req.tenantDb((tx) => tx.insert(notes).values({ title, body }).returning());
    const { embeddingModel, vectorStore } = await mt.providersFor(requireTenant().tenantId);
    const { embeddings } = await embeddingModel.embed([`${title}. ${body}`]);
    await vectorStore.upsert([{ id: note!.id, vector: embeddings[0]!, metadata: { title } }]);
    reply.code(201);
    return { id: note!.id, tenant: currentTenant() };
  });

  app.get<{ Querystring: { q?: string } }>('/ask', async (req) => {
    const question = req.query.q ?? '';
    if (question.trim() === '') throw new MtPaasError('INVALID_REQUEST', 'Ask with ?q=<your question>.');
    const { embeddingModel, languageModel, vectorStore } = await mt.providersFor(requireTenant().tenantId);
    const { embeddings } = await embeddingModel.embed([question]);
    const matches = await vectorStore.query({ vector: embeddings[0]!, topK: 3 });
    const ids = new Set(matches.map((match) => match.id));
    const rows = await req.tenantDb((tx) => tx.select().from(notes));
    const context = rows
      .filter((row) => ids.has(row.id))
      .map((row) => row.body)
      .join(' ');
    const { text } = await languageModel.generate({ system: context, prompt: question });
    return { answer: text, sources: matches.map((match) => match.metadata?.title) };
  });

  app.get('/quiz', { preHandler: requireFeature('quiz') }, async () => ({
    questions: ['Which isolation mode shares tables between tenants?'],
  }));

  await app.listen({ port: options.port ?? 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;

  return {
    app,
    url: `http://127.0.0.1:${port}`,
    async close() {
      await app.close();
      await mt.close();
    },
  };
}
