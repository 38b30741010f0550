/**
 * A small tenant-aware service built only on the @mt-paas packages, on embedded defaults:
 * PGlite for the catalog and the tenant tables (row mode, RLS), in-process rate limits and quotas,
 * the deterministic local LLM and an in-memory vector store. Nothing to install, nothing to start.
 */
import { fileURLToPath } from 'node:url';
import { parseConfig } from '@mt-paas/config';
import { currentTenant, MtPaasError } from '@mt-paas/context';
import { createCatalog, createTenantDb } from '@mt-paas/db';
import { pipelineOptionsFromConfig } from '@mt-paas/framework';
import { mtPaasFastify, requireFeature } from '@mt-paas/middleware/fastify';
import { createLocalEmbeddingModel, createLocalProvider } from '@mt-paas/providers-llm';
import { createMemoryVectorStore } from '@mt-paas/providers-vector';
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
  const config = parseConfig(DEMO_CONFIG, { filename: 'demo mt-paas.yaml', env: {} });

  const catalog = await createCatalog({ dataDir: options.dataDir ?? 'memory' });
  await catalog.migrate();
  for (const tenant of DEMO_TENANTS) {
    const plan = config.plans[tenant.plan];
    await catalog.tenants.upsert({ id: tenant.id, name: tenant.name, status: 'active', plan: tenant.plan });
    await catalog.tenants.setEntitlements(tenant.id, {
      plan: tenant.plan,
      features: { ...config.features.defaults, ...plan?.features },
      limits: { rpm: plan?.rpm ?? null, quotas: plan?.quotas ?? {} },
      source: 'demo',
    });
    if (tenant.status !== 'active') {
      await catalog.tenants.setStatus(tenant.id, tenant.status, { reason: 'subscription not renewed' });
    }
  }

  const tenantDb = await createTenantDb({ mode: 'row', catalog, migrationsFolder });
  const migrated = await tenantDb.migrateTenants();
  if (migrated.failed.length > 0) {
    throw new MtPaasError('INTERNAL', `Demo migrations failed: ${JSON.stringify(migrated.failed)}`);
  }

  const embedding = createLocalEmbeddingModel({ dimensions: 256 });
  const vectors = createMemoryVectorStore({ dimensions: embedding.dimensions });
  const llm = createLocalProvider().languageModel('extractive');

  const logger = pino({ level: options.logLevel ?? 'warn' });
  const app = Fastify();
  await app.register(mtPaasFastify, {
    ...pipelineOptionsFromConfig(config),
    directory: catalog.directory,
    usageSink: catalog.usage,
    auditSink: catalog.audit,
    logger,
    quota: { flushIntervalMs: 1_000 },
  });

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

  app.get('/notes', async () =>
    tenantDb.run((tx) =>
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
    const [note] = await tenantDb.run((tx) => tx.insert(notes).values({ title, body }).returning());
    const { embeddings } = await embedding.embed([`${title}. ${body}`]);
    await vectors.upsert([{ id: note!.id, vector: embeddings[0]!, metadata: { title } }]);
    reply.code(201);
    return { id: note!.id, tenant: currentTenant() };
  });

  app.get<{ Querystring: { q?: string } }>('/ask', async (req) => {
    const question = req.query.q ?? '';
    if (question.trim() === '') throw new MtPaasError('INVALID_REQUEST', 'Ask with ?q=<your question>.');
    const { embeddings } = await embedding.embed([question]);
    const matches = await vectors.query({ vector: embeddings[0]!, topK: 3 });
    const ids = new Set(matches.map((match) => match.id));
    const rows = await tenantDb.run((tx) => tx.select().from(notes));
    const context = rows
      .filter((row) => ids.has(row.id))
      .map((row) => row.body)
      .join(' ');
    const { text } = await llm.generate({ system: context, prompt: question });
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
      await vectors.close();
      await tenantDb.close();
      await catalog.close();
    },
  };
}
