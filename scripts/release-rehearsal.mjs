#!/usr/bin/env node
// Release rehearsal: versions and publishes every public @mt-paas/* package to a throwaway local registry
// (Verdaccio on loopback), then installs them with plain `npm` in folders outside the workspace, the way a
// vendor would, and proves that each one works alone with only its declared dependencies.
//
//   node scripts/release-rehearsal.mjs [--only @mt-paas/<name>]... [--repo <dir>] [--no-docs] [--no-node24] [--keep]
//
// Steps: copy the working tree (+ the built dist/) to a temp dir → `changeset version` with a rehearsal
// changeset → `changeset publish` to Verdaccio → per scenario: `npm install` from the registry into a temp
// folder, check the installed manifests, scan each package's dist/ for imports of undeclared packages, check
// that every module resolves inside that folder, `tsc` (moduleResolution nodenext) on the vendor file, and run
// it on Node 20 and Node 24. Exits non-zero, naming the package, when any package would install broken.
// Verdaccio is stopped and every temp dir / scratch database removed at the end, also on failure or Ctrl-C.
import { execFileSync, spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const TOOL_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const requireFromTool = createRequire(join(TOOL_ROOT, 'package.json'));
const SCOPE = '@mt-paas';
const DOC_BEGIN = '<!-- release-rehearsal:sizes:begin -->';
const DOC_END = '<!-- release-rehearsal:sizes:end -->';
const RESULT_PREFIX = 'REHEARSAL_RESULT ';
const BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

// ---------------------------------------------------------------------------------------------------------
// Smoke scenarios. EVERY published package must have an entry in SMOKE: a package added under packages/
// without one makes the rehearsal fail, so that its own "the vendor's first lines work" scenario gets written.
// `alone: true` means: installing it alone, importing every entry point and type-checking them is its smoke
// test (each package gets that "alone" check anyway); `scenarios` names specific vendor scenarios below.
// ---------------------------------------------------------------------------------------------------------

/** @type {Record<string, { scenarios: string[], alone?: boolean, why?: string }>} */
export const SMOKE = {
  '@mt-paas/context': { scenarios: ['fastify-tenant-app'] },
  '@mt-paas/middleware': { scenarios: ['fastify-tenant-app'] },
  '@mt-paas/db': { scenarios: ['db-row-mode'] },
  '@mt-paas/providers-llm': { scenarios: ['llm-local-provider'] },
  '@mt-paas/marketplace': { scenarios: ['marketplace-webhooks'] },
  '@mt-paas/provisioning': { scenarios: ['provisioning-lifecycle'] },
  // control-kill-switch (@mt-paas/control)
  '@mt-paas/control': { scenarios: ['control-kill-switch'] },
  // framework-one-line-setup (@mt-paas/framework)
  '@mt-paas/framework': { scenarios: ['framework-one-line-setup'] },
  '@mt-paas/config': {
    scenarios: [],
    alone: true,
    why: 'a loader: importing it and its types is what a vendor does first',
  },
  '@mt-paas/providers-vector': {
    scenarios: [],
    alone: true,
    why: 'its stores need a vector server or pglite (optional peers); import + types cover the package',
  },
};

/**
 * Packaging defects the rehearsal found in packages/* and that were reported to their owners (this tooling
 * does not edit packages/*). A failure matching an entry is printed as KNOWN and does not fail the run; an
 * entry that matched nothing in a full run fails it as stale, so it is removed as soon as the package is fixed.
 * @type {{ pkg: string, match: RegExp, note: string }[]}
 */
export const KNOWN_DEFECTS = [];

const usedDefects = new Set();

/** Marks a failure that matches a KNOWN_DEFECTS entry (`known: note`). */
function classify(failure) {
  const defect = KNOWN_DEFECTS.find((d) => d.pkg === failure.pkg && d.match.test(failure.message));
  if (!defect) return failure;
  usedDefects.add(defect);
  return { ...failure, known: defect.note };
}

const isOpen = (problem) => !problem.known;

const FASTIFY_APP = `import { parseTenantId, type Tenant, type TenantDirectory } from '@mt-paas/context';
import { mtPaasFastify } from '@mt-paas/middleware/fastify';
import Fastify from 'fastify';

const now = new Date();
const tenant: Tenant = { id: parseTenantId('univ_8'), name: 'Gwangju University', status: 'active', plan: 'starter',
  entitlements: { plan: 'starter', features: {}, limits: { rpm: null, quotas: {} } }, placement: { mode: 'row' },
  metadata: {}, createdAt: now, updatedAt: now };
const directory: TenantDirectory = { get: async (id) => (id === tenant.id ? tenant : undefined),
  resolveDomain: async () => undefined, list: async () => ({ tenants: [tenant] }) };
const app = Fastify();
await app.register(mtPaasFastify, { directory, strategies: [{ type: 'header' }] });
app.get('/whoami', async (request) => ({ tenant: request.tenant?.tenantId }));
const base = await app.listen({ host: '127.0.0.1', port: 0 });

// --- the rehearsal calls it ---
async function call(tenantHeader?: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(\`\${base}/whoami\`, { headers: tenantHeader === undefined ? {} : { 'x-tenant-id': tenantHeader } });
  return { status: response.status, body: await response.json() };
}
const result = { ok: await call('univ_8'), bad: await call("univ_8' OR 1=1"), unknown: await call('univ_9'), missing: await call() };
await app.close();
console.log('${RESULT_PREFIX}' + JSON.stringify(result));
`;

const MARKETPLACE_APP = `import { randomBytes } from 'node:crypto';
import { createMarketplaceReceiver, createMemoryReceiptStore, type HandlerContext, signWebhook } from '@mt-paas/marketplace';
import { marketplaceFastify } from '@mt-paas/marketplace/fastify';
import Fastify from 'fastify';

const secret = \`whsec_\${randomBytes(32).toString('base64')}\`;
const otherSecret = \`whsec_\${randomBytes(32).toString('base64')}\`;
const handled: { type: string; tenantId: string; webhookId: string; auth: string }[] = [];
const record = (type: string, tenantId: string, context: HandlerContext) =>
  handled.push({ type, tenantId, webhookId: context.webhookId, auth: context.auth });
const receiver = createMarketplaceReceiver({
  serviceId: 'keli_tutor',
  secrets: [secret],
  apiKeys: ['rehearsal_api_key'],
  receipts: createMemoryReceiptStore(),
  handlers: {
    onProvisionRequested: (data, context) => {
      record('provision', data.tenantId, context);
      return { accessUrl: \`https://tutor.example.com?tenant=\${data.tenantId}\` };
    },
    onSubscriptionUpdated: (data, context) => { record('subscription', data.tenantId, context); },
    onServiceCancelled: (data, context) => { record('cancelled', data.applicationId, context); return {}; },
    onUserDeleted: (data, context) => { record('user-deleted', data.email, context); return { deletedTenants: [] }; },
    onBlocked: (data, context) => { record('blocked', data.tenantId, context); },
    onUnblocked: (data, context) => { record('unblocked', data.tenantId, context); },
  },
});
const app = Fastify();
await app.register(marketplaceFastify, { receiver });
const base = await app.listen({ host: '127.0.0.1', port: 0 });

// --- the rehearsal calls it ---
async function post(path: string, body: string, headers: Record<string, string>) {
  const response = await fetch(\`\${base}\${path}\`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  return { status: response.status, receipt: response.headers.get('x-mt-paas-receipt'), body: await response.json() };
}
const event = JSON.stringify({ type: 'tenant.blocked', version: 1, timestamp: new Date().toISOString(),
  data: { tenant_id: 'univ_8', reason: 'subscription_expired', grace_period_hours: 24, message: '구독이 만료되었습니다.' } });
const signed = signWebhook({ id: 'msg_rehearsal_1', timestamp: new Date(), body: event, secrets: [secret] });
const first = await post('/api/mt-paas/v1/events', event, { ...signed });
const afterFirst = handled.length;
const again = await post('/api/mt-paas/v1/events', event, { ...signed });
const afterAgain = handled.length;
const forged = { ...signWebhook({ id: 'msg_rehearsal_2', timestamp: new Date(), body: event, secrets: [otherSecret] }) };
const wrongSecret = await post('/api/mt-paas/v1/events', event, forged);
const tampered = await post('/api/mt-paas/v1/events', event.replace('univ_8', 'univ_9'),
  { ...signWebhook({ id: 'msg_rehearsal_3', timestamp: new Date(), body: event, secrets: [secret] }) });
const afterBad = handled.length;
const create = JSON.stringify({ tenant_id: 'test_univ', tenant_name: '테스트대학교', admin_email: 'admin@test.ac.kr',
  admin_name: '관리자', application_id: 1, application_kind: 'service' });
const legacy = await post('/api/tenant/create', create, { 'x-api-key': 'rehearsal_api_key' });
const legacyWrongKey = await post('/api/tenant/create', create, { 'x-api-key': 'not_the_key' });
await app.close();
console.log('${RESULT_PREFIX}' + JSON.stringify({ first, again, wrongSecret, tampered, legacy, legacyWrongKey,
  calls: { afterFirst, afterAgain, afterBad }, handled }));
`;

// --- control-kill-switch (@mt-paas/control) ---------------------------------------------------------------
// A vendor's first kill-switch lines on the embedded catalog (PGlite, no server): the marketplace outbox as is,
// a block with a message, the catalog row while blocked, the status reports enqueued with it, the unblock,
// and the control metrics on /metrics.
const CONTROL_APP = `import { parseTenantId } from '@mt-paas/context';
import { createControlPlane, type ControlLogger } from '@mt-paas/control';
import { createCatalog } from '@mt-paas/db';
import { createOutbox } from '@mt-paas/marketplace';

const quiet: ControlLogger = { debug() {}, info() {}, warn() {}, error() {} };
const catalog = await createCatalog({ dataDir: 'memory' });
await catalog.migrate();
await catalog.tenants.upsert({ id: 'univ_8', name: 'Gwangju University', status: 'active' });
const outbox = createOutbox({ driver: catalog.driver, schema: catalog.schema });
const control = createControlPlane({ serviceId: 'keli_tutor', catalog, outbox, logger: quiet });
control.start();

const id = parseTenantId('univ_8');
const row = async () => {
  const tenant = await catalog.directory.get(id);
  return { status: tenant?.status, block: tenant?.block === undefined ? null : { reason: tenant.block.reason, message: tenant.block.message } };
};
const block = await control.block('univ_8', { reason: 'policy_violation', message: '이용이 일시 중지되었습니다. 관리자에게 문의하세요.' });
const whileBlocked = await row();
const unblock = await control.unblock('univ_8');
const afterUnblock = await row();
let unknown: unknown;
try {
  await control.block('univ_9', { reason: 'policy_violation' });
} catch (error) {
  unknown = { code: (error as { code?: string }).code };
}
const reports = (await outbox.claim(10, 30)).map((message) => ({ type: message.type, tenantId: message.tenantId,
  status: message.type === 'tenant.status' ? message.payload.status : undefined }));
const metrics = await control.metrics.render();
await control.stop();
await catalog.close();
console.log('${RESULT_PREFIX}' + JSON.stringify({ block: { tenantId: block.tenantId, effectiveNow: block.effectiveAt.getTime() <= Date.now() }, whileBlocked,
  unblock: { unblocked: unblock.unblocked, status: unblock.status }, afterUnblock, unknown, reports,
  metrics: { contentType: metrics.contentType, body: metrics.body } }));
`;
// --- end control-kill-switch ---

// --- framework-one-line-setup (@mt-paas/framework) ------------------------------------------------------
// The one-line setup on embedded defaults (PGlite, in-process limits, the local LLM): createServiceFramework from
// an mt-paas.yaml, mt.fastify on an app, the marketplace's provision request onboarding a tenant whose admin the
// vendor's afterOnboard hook seeds, req.tenantDb and req.hasFeature on a route, providersFor, close().
const FRAMEWORK_APP = `import { createServiceFramework } from '@mt-paas/framework';
import { pgTable, text } from 'drizzle-orm/pg-core';
import Fastify from 'fastify';

const users = pgTable('users', { tenantId: text('tenant_id'), email: text('email').notNull(), role: text('role').notNull() });
const mt = await createServiceFramework({
  configPath: 'mt-paas.yaml',
  env: { MARKETPLACE_API_KEY: 'mk_rehearsal_0123456789' },
  dataDir: 'memory',
  migrationsFolder: './drizzle',
  hooks: {
    afterOnboard: ({ scope, adminEmail }) =>
      scope.run((tx) => tx.insert(users).values({ email: adminEmail!, role: 'admin' }).onConflictDoNothing()),
  },
});
const app = Fastify();
await app.register(mt.fastify);
app.get('/users', async (req) => req.tenantDb((tx) => tx.select({ email: users.email, role: users.role }).from(users)));
app.get('/quiz', async (req) => ({ quiz: req.hasFeature('quiz') }));
const base = await app.listen({ host: '127.0.0.1', port: 0 });

const created = await fetch(\`\${base}/api/tenant/create\`, {
  method: 'POST',
  headers: { 'x-api-key': 'mk_rehearsal_0123456789', 'content-type': 'application/json' },
  body: JSON.stringify({ tenant_id: 'univ_8', tenant_name: 'Gwangju University', admin_email: 'admin@univ8.ac.kr',
    application_id: 'app-1', application_kind: 'service', plan: 'professional' }),
});
const get = async (path: string, tenant?: string) => {
  const response = await fetch(\`\${base}\${path}\`, { headers: tenant === undefined ? {} : { 'x-tenant-id': tenant } });
  return { status: response.status, body: await response.json() };
};
const result = {
  created: { status: created.status, body: await created.json() },
  users: await get('/users', 'univ_8'),
  quiz: await get('/quiz', 'univ_8'),
  unknown: await get('/users', 'univ_9'),
  models: (await mt.providersFor('univ_8')).models,
  rag: mt.config.custom.rag,
};
await app.close();
await mt.close();
console.log('${RESULT_PREFIX}' + JSON.stringify(result));
`;
const FRAMEWORK_CONFIG = `service:
  id: keli_tutor
  public_url: https://tutor.example
marketplace:
  enabled: false
  api_key: "\${MARKETPLACE_API_KEY}"
plans:
  professional:
    features:
      quiz: true
logging:
  level: silent
custom:
  rag:
    chunk_size: 400
    overlap: 40
`;
// --- end framework-one-line-setup ---

const DB_MIGRATION = `CREATE TABLE "notes" (
	"tenant_id" text DEFAULT nullif(current_setting('app.tenant_id', true), '') NOT NULL,
	"id" serial NOT NULL,
	"body" text NOT NULL,
	CONSTRAINT "notes_pkey" PRIMARY KEY("tenant_id","id")
);
--> statement-breakpoint
ALTER TABLE "notes" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY "notes_tenant_isolation" ON "notes" AS PERMISSIVE FOR ALL TO public USING ("tenant_id" = nullif(current_setting('app.tenant_id', true), '')) WITH CHECK ("tenant_id" = nullif(current_setting('app.tenant_id', true), ''));
`;

const DB_APP = `import { fileURLToPath } from 'node:url';
import { createCatalog, createTenantDb, ensureAppRole, tenantTable } from '@mt-paas/db';
import { serial, text } from 'drizzle-orm/pg-core';
import pg from 'pg';

const notes = tenantTable('notes', { id: serial('id').primaryKey(), body: text('body').notNull() });
const adminUrl = process.env.DATABASE_URL!;
const appUrl = process.env.APP_DATABASE_URL!;
const catalog = await createCatalog({ connectionString: adminUrl });
await catalog.migrate();
await ensureAppRole(catalog.driver, { role: process.env.APP_ROLE!, password: 'rehearsal' });
const tenantDb = await createTenantDb({ mode: 'row', catalog, connectionString: appUrl, adminConnectionString: adminUrl,
  migrationsFolder: fileURLToPath(new URL('./migrations', import.meta.url)) });
await tenantDb.migrateTenants();
for (const id of ['univ_a', 'univ_b']) {
  await catalog.tenants.upsert({ id, name: id, status: 'active' });
  await tenantDb.forTenant(id).run((tx) => tx.insert(notes).values({ body: \`note of \${id}\` }));
}
const seen = (id: string) =>
  tenantDb.forTenant(id).run((tx) => tx.select({ tenant_id: notes.tenantId, body: notes.body }).from(notes));

// --- the rehearsal checks: each tenant sees only its rows; the app role cannot bypass RLS ---
const app = new pg.Client({ connectionString: appUrl });
await app.connect();
const role = (await app.query('SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user')).rows[0];
const unscoped = (await app.query('SELECT count(*)::int AS n FROM notes')).rows[0].n;
await app.end();
const result = { univ_a: await seen('univ_a'), univ_b: await seen('univ_b'), role, unscoped };
await tenantDb.close();
await catalog.close();
console.log('${RESULT_PREFIX}' + JSON.stringify(result));
`;

const DB_ADMIN = `import pg from 'pg';
const [action, url, database, role] = process.argv.slice(2);
const client = new pg.Client({ connectionString: url });
await client.connect();
const id = (name) => '"' + name.replaceAll('"', '""') + '"';
if (action === 'create') {
  await client.query('CREATE DATABASE ' + id(database));
} else {
  await client.query('DROP DATABASE IF EXISTS ' + id(database) + ' WITH (FORCE)');
  await client.query('DROP ROLE IF EXISTS ' + id(role));
}
await client.end();
`;

const PROVISIONING_USERS_MIGRATION = `CREATE TABLE "users" (
	"tenant_id" text DEFAULT nullif(current_setting('app.tenant_id', true), '') NOT NULL,
	"id" uuid DEFAULT gen_random_uuid() NOT NULL,
	"email" text NOT NULL,
	"role" text NOT NULL,
	CONSTRAINT "users_pkey" PRIMARY KEY("tenant_id","id"),
	CONSTRAINT "users_email_unique" UNIQUE("tenant_id","email")
);
--> statement-breakpoint
ALTER TABLE "users" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY "users_tenant_isolation" ON "users" AS PERMISSIVE FOR ALL TO public USING ("tenant_id" = nullif(current_setting('app.tenant_id', true), '')) WITH CHECK ("tenant_id" = nullif(current_setting('app.tenant_id', true), ''));
`;

// The README's first example (schema mode, an afterOnboard hook seeding the admin), then the installed `mt-paas`
// bin as a vendor's operator runs it: `npx --offline --no -- mt-paas …` (the installed bin or an error, never a
// package fetched from a registry; without `--` npx takes `--help` for itself), with the Node under test first on
// PATH so the bin's `#!/usr/bin/env node` shebang starts that Node.
const PROVISIONING_APP = `import { spawnSync } from 'node:child_process';
import { delimiter, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCatalog, createTenantDb, ensureAppRole, tenantTable } from '@mt-paas/db';
import { createProvisioner } from '@mt-paas/provisioning';
import { text, uuid } from 'drizzle-orm/pg-core';
import pg from 'pg';

const users = tenantTable('users', { id: uuid('id').defaultRandom().primaryKey(), email: text('email').notNull().unique(),
  role: text('role').notNull() });
const catalog = await createCatalog({ connectionString: process.env.DATABASE_URL });
await catalog.migrate();
await ensureAppRole(catalog.driver, { role: process.env.APP_ROLE!, password: 'rehearsal' });
const tenantDb = await createTenantDb({
  mode: 'schema',
  catalog,
  connectionString: process.env.APP_DATABASE_URL,
  migrationsFolder: fileURLToPath(new URL('./drizzle', import.meta.url)),
});
const provisioner = createProvisioner({
  catalog,
  tenantDbs: { schema: tenantDb },
  defaultMode: 'schema',
  hooks: {
    afterOnboard: ({ scope, input }) =>
      scope.run((tx) => tx.insert(users).values({ email: input.adminEmail!, role: 'admin' }).onConflictDoNothing()),
  },
});

// --- the rehearsal checks each step, the tenant's storage and the recorded jobs ---
const cliEnv = { ...process.env, PATH: \`\${dirname(process.execPath)}\${delimiter}\${process.env.PATH ?? ''}\` };
function cli(...args: string[]) {
  const ran = spawnSync('npx', ['--offline', '--no', '--', 'mt-paas', ...args], { env: cliEnv, encoding: 'utf8', timeout: 60_000 });
  let json: unknown;
  try { json = JSON.parse(ran.stdout); } catch { json = undefined; }
  return { code: ran.status, json, stdout: ran.stdout, stderr: ran.stderr.split('\\n').slice(-5).join('\\n') };
}
const listed = (run: ReturnType<typeof cli>) => ({ code: run.code,
  tenants: ((run.json as { tenants?: { id: string; status: string; placement: { mode: string } }[] })?.tenants ?? [])
    .map((t) => ({ id: t.id, status: t.status, mode: t.placement.mode })), stderr: run.code === 0 ? '' : run.stderr });
const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
await admin.connect();
const schemaOf = async () => (await admin.query(
  "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 't_hallym' AND table_name = 'users'")).rows[0].n;
const adminsOf = () => tenantDb.forTenant('hallym').run((tx) => tx.select({ email: users.email, role: users.role }).from(users));
const brief = (t: { id: string; status: string; placement: { mode: string } }) => ({ id: t.id, status: t.status, mode: t.placement.mode });

const onboarded = brief(await provisioner.onboard({ id: 'hallym', name: 'Hallym University', adminEmail: 'admin@hallym.ac.kr' }));
const again = brief(await provisioner.onboard({ id: 'hallym', name: 'Hallym University', adminEmail: 'admin@hallym.ac.kr' }));
const storage = { usersTable: await schemaOf(), admins: await adminsOf() };
const suspended = brief(await provisioner.suspend('hallym', { reason: 'service_cancelled' }));
const help = cli('--help');
const listSuspended = listed(cli('tenant', 'list', '--json'));
const resumed = brief(await provisioner.resume('hallym'));
const offboarded = brief(await provisioner.offboard('hallym', { reason: 'user_deleted' }));
const listDeleted = listed(cli('tenant', 'list', '--json'));
const listActive = listed(cli('tenant', 'list', '--status', 'active', '--json'));
const show = cli('tenant', 'show', 'hallym', '--json');
const missing = cli('tenant', 'show', 'nobody', '--json');
const jobs = (await provisioner.jobs('hallym')).map((j) => ({ action: j.action, state: j.state, attempts: j.attempts, error: j.error }));
const cliJobs = ((show.json as { jobs?: { action: string; state: string }[] })?.jobs ?? []).map((j) => ({ action: j.action, state: j.state }));
const keptAfterOffboard = await schemaOf();
const binNode = spawnSync('node', ['--version'], { env: cliEnv, encoding: 'utf8' }).stdout.trim();
await admin.end();
await tenantDb.close();
await catalog.close();
console.log('${RESULT_PREFIX}' + JSON.stringify({ onboarded, again, storage, suspended, resumed, offboarded, keptAfterOffboard,
  jobs, cli: { help: { code: help.code, usage: help.stdout.includes('Usage: mt-paas'), tenant: /^\\s+tenant\\b/m.test(help.stdout),
    stderr: help.code === 0 ? '' : help.stderr }, listSuspended, listDeleted, listActive,
    show: { code: show.code, jobs: cliJobs, stderr: show.code === 0 ? '' : show.stderr },
    missing: { code: missing.code, error: (missing.json as { error?: { code?: string } })?.error?.code },
    node: binNode, appNode: process.version } }));
`;

const LLM_APP = `import { createLocalProvider } from '@mt-paas/providers-llm';

const local = createLocalProvider();
const answer = await local.languageModel('extractive').generate({
  system: 'The library opens at 9 am. The cafeteria serves lunch from noon. Parking is free on Sundays.',
  prompt: 'When does the library open?',
});
const chunks: string[] = [];
const stream = await local('extractive').stream({ system: 'Exams start on June 10. Grades are posted in July.', prompt: 'When do exams start?' });
for await (const delta of stream) chunks.push(delta);
const { embeddings } = await local.embedding('hash', { dimensions: 16 }).embed(['library hours', 'parking']);
console.log('${RESULT_PREFIX}' + JSON.stringify({ text: answer.text, model: answer.model, streamed: chunks.join(''),
  usage: answer.usage, dimensions: embeddings.map((vector) => vector.length) }));
`;

/**
 * Specific vendor scenarios. `install` are npm specs beside the @mt-paas packages (a bare name takes its range
 * from the pnpm catalog), `expect(result)` returns problems (strings) for the JSON the app printed.
 */
export const SCENARIOS = {
  'fastify-tenant-app': {
    packages: ['@mt-paas/context', '@mt-paas/middleware'],
    install: ['fastify'],
    files: { 'app.mts': FASTIFY_APP },
    expect: (r) => [
      ...same('200 for a known tenant', r.ok, { status: 200, body: { tenant: 'univ_8' } }),
      ...same('refusal of a malformed tenant id', pick(r.bad), { status: 400, code: 'INVALID_TENANT_ID' }),
      ...same('refusal of an unknown tenant', pick(r.unknown), { status: 404, code: 'TENANT_NOT_FOUND' }),
      ...same('refusal without a tenant', pick(r.missing), { status: 400, code: 'TENANT_NOT_IDENTIFIED' }),
    ],
  },
  'marketplace-webhooks': {
    packages: ['@mt-paas/marketplace'],
    install: ['fastify'],
    files: { 'app.mts': MARKETPLACE_APP },
    expect: (r) => {
      const blocked = {
        ok: true,
        webhook_id: 'msg_rehearsal_1',
        type: 'tenant.blocked',
        result: 'processed',
      };
      return [
        ...same('signed delivery', r.first, { status: 200, receipt: 'processed', body: blocked }),
        ...same('the same delivery again', r.again, { status: 200, receipt: 'duplicate', body: blocked }),
        ...same('delivery signed with another secret', pickReason(r.wrongSecret), {
          status: 401,
          code: 'WEBHOOK_SIGNATURE_INVALID',
          reason: 'bad_signature',
        }),
        ...same('delivery whose body was changed after signing', pickReason(r.tampered), {
          status: 401,
          code: 'WEBHOOK_SIGNATURE_INVALID',
          reason: 'bad_signature',
        }),
        ...same('handler calls after the first delivery, its duplicate, the two refused ones', r.calls, {
          afterFirst: 1,
          afterAgain: 1,
          afterBad: 1,
        }),
        ...same('seed POST /api/tenant/create with X-API-Key', r.legacy, {
          status: 200,
          receipt: 'processed',
          body: {
            success: true,
            tenant_id: 'test_univ',
            access_url: 'https://tutor.example.com?tenant=test_univ',
          },
        }),
        ...same('seed POST /api/tenant/create with a wrong X-API-Key', r.legacyWrongKey, {
          status: 401,
          receipt: null,
          body: { detail: 'Invalid API key' },
        }),
        ...same('what the handlers saw', r.handled, [
          { type: 'blocked', tenantId: 'univ_8', webhookId: 'msg_rehearsal_1', auth: 'signature' },
          { type: 'provision', tenantId: 'test_univ', webhookId: r.handled?.[1]?.webhookId, auth: 'api_key' },
        ]),
        ...(typeof r.handled?.[1]?.webhookId === 'string' && r.handled[1].webhookId.length > 0
          ? []
          : [`the seed delivery got no delivery id: ${JSON.stringify(r.handled?.[1])}`]),
      ];
    },
  },
  // --- framework-one-line-setup (@mt-paas/framework) ---
  'framework-one-line-setup': {
    packages: ['@mt-paas/framework'],
    install: ['fastify', '@electric-sql/pglite', 'drizzle-orm'],
    files: {
      'app.mts': FRAMEWORK_APP,
      'mt-paas.yaml': FRAMEWORK_CONFIG,
      'drizzle/0000_users.sql': PROVISIONING_USERS_MIGRATION,
      'drizzle/meta/_journal.json': `${JSON.stringify({ version: '7', dialect: 'postgresql', entries: [{ idx: 0, version: '7', when: 1, tag: '0000_users', breakpoints: true }] }, null, 2)}\n`,
    },
    expect: (r) => [
      ...same('the provision request', r.created, {
        status: 200,
        body: { success: true, tenant_id: 'univ_8', access_url: 'https://tutor.example/?tenant=univ_8' },
      }),
      ...same('the seeded admin through req.tenantDb', r.users, {
        status: 200,
        body: [{ email: 'admin@univ8.ac.kr', role: 'admin' }],
      }),
      ...same('req.hasFeature of the professional plan', r.quiz, { status: 200, body: { quiz: true } }),
      ...same('an unknown tenant', r.unknown?.status, 404),
      ...same('providersFor without keys', r.models, ['local:extractive']),
      ...same('mt.config.custom.rag', r.rag, { chunkSize: 400, overlap: 40 }),
    ],
  },
  // --- end framework-one-line-setup ---
  // --- control-kill-switch (@mt-paas/control) ---
  'control-kill-switch': {
    packages: ['@mt-paas/control', '@mt-paas/context', '@mt-paas/db', '@mt-paas/marketplace'],
    install: ['@electric-sql/pglite'],
    files: { 'app.mts': CONTROL_APP },
    expect: (r) => {
      const message = '이용이 일시 중지되었습니다. 관리자에게 문의하세요.';
      const body = typeof r.metrics?.body === 'string' ? r.metrics.body : '';
      return [
        ...same('block()', r.block, { tenantId: 'univ_8', effectiveNow: true }),
        ...same('the catalog row while blocked', r.whileBlocked, {
          status: 'blocked',
          block: { reason: 'policy_violation', message },
        }),
        ...same('unblock()', r.unblock, { unblocked: true, status: 'active' }),
        ...same('the catalog row after unblock', r.afterUnblock, { status: 'active', block: null }),
        ...same('block() of a tenant the catalog does not have', r.unknown, { code: 'TENANT_NOT_FOUND' }),
        ...same('status reports in the marketplace outbox', r.reports, [
          { type: 'tenant.status', tenantId: 'univ_8', status: 'blocked' },
          { type: 'tenant.status', tenantId: 'univ_8', status: 'active' },
        ]),
        ...(String(r.metrics?.contentType).startsWith('text/plain')
          ? []
          : [`/metrics content type: ${JSON.stringify(r.metrics?.contentType)}`]),
        ...[
          'mtpaas_kill_switch_actions_total{action="block"} 1',
          'mtpaas_kill_switch_actions_total{action="unblock"} 1',
          'mtpaas_tenants{status="active",plan="free"} 1',
          'mtpaas_outbox_pending_messages ',
        ]
          .filter((line) => !body.split('\n').some((l) => l.startsWith(line)))
          .map((line) => `/metrics has no line starting with ${JSON.stringify(line)}`),
      ];
    },
  },
  // --- end control-kill-switch ---
  'db-row-mode': {
    packages: ['@mt-paas/db'],
    install: ['drizzle-orm', 'pg', '@types/pg'],
    files: {
      'app.mts': DB_APP,
      'admin.mjs': DB_ADMIN,
      'migrations/0000_notes.sql': DB_MIGRATION,
      'migrations/meta/_journal.json': `${JSON.stringify({ version: '7', dialect: 'postgresql', entries: [{ idx: 0, version: '7', when: 1, tag: '0000_notes', breakpoints: true }] }, null, 2)}\n`,
    },
    postgres: true,
    expect: (r) => [
      ...same('rows of univ_a', r.univ_a, [{ tenant_id: 'univ_a', body: 'note of univ_a' }]),
      ...same('rows of univ_b', r.univ_b, [{ tenant_id: 'univ_b', body: 'note of univ_b' }]),
      ...same('app role flags', r.role, { rolsuper: false, rolbypassrls: false }),
      ...same('rows seen by the app role outside a tenant scope', r.unscoped, 0),
    ],
  },
  'provisioning-lifecycle': {
    packages: ['@mt-paas/provisioning', '@mt-paas/db'],
    install: ['drizzle-orm', 'pg', '@types/pg'],
    files: {
      'app.mts': PROVISIONING_APP,
      'admin.mjs': DB_ADMIN,
      'mt-paas.yaml': 'service:\n  id: keli_tutor\nisolation:\n  mode: SCHEMA_PER_TENANT\n',
      'drizzle/0000_users.sql': PROVISIONING_USERS_MIGRATION,
      'drizzle/meta/_journal.json': `${JSON.stringify({ version: '7', dialect: 'postgresql', entries: [{ idx: 0, version: '7', when: 1, tag: '0000_users', breakpoints: true }] }, null, 2)}\n`,
    },
    postgres: true,
    expect: (r) => {
      const hallym = (status) => ({ id: 'hallym', status, mode: 'schema' });
      const ok = (tenants) => ({ code: 0, tenants, stderr: '' });
      return [
        ...same('onboard', r.onboarded, hallym('active')),
        ...same('onboard again (a no-op)', r.again, hallym('active')),
        ...same(
          'tenant storage after onboarding (schema t_hallym, admin seeded once by afterOnboard)',
          r.storage,
          {
            usersTable: 1,
            admins: [{ email: 'admin@hallym.ac.kr', role: 'admin' }],
          },
        ),
        ...same('suspend', r.suspended, hallym('suspended')),
        ...same('resume', r.resumed, hallym('active')),
        ...same('offboard', r.offboarded, hallym('deleted')),
        ...same('storage kept after offboarding (soft delete)', r.keptAfterOffboard, 1),
        ...same('recorded provisioning jobs, newest first', r.jobs, [
          { action: 'offboard', state: 'succeeded', attempts: 1, error: null },
          { action: 'resume', state: 'succeeded', attempts: 1, error: null },
          { action: 'suspend', state: 'succeeded', attempts: 1, error: null },
          { action: 'onboard', state: 'succeeded', attempts: 1, error: null },
        ]),
        ...same('npx mt-paas --help', r.cli?.help, { code: 0, usage: true, tenant: true, stderr: '' }),
        ...same(
          'npx mt-paas tenant list --json (suspended)',
          r.cli?.listSuspended,
          ok([hallym('suspended')]),
        ),
        ...same('npx mt-paas tenant list --json (offboarded)', r.cli?.listDeleted, ok([hallym('deleted')])),
        ...same('npx mt-paas tenant list --status active --json (offboarded)', r.cli?.listActive, ok([])),
        ...same('npx mt-paas tenant show hallym --json: its jobs', r.cli?.show, {
          code: 0,
          jobs: ['offboard', 'resume', 'suspend', 'onboard'].map((action) => ({
            action,
            state: 'succeeded',
          })),
          stderr: '',
        }),
        ...same('npx mt-paas tenant show nobody --json: exit 3, TENANT_NOT_FOUND', r.cli?.missing, {
          code: 3,
          error: 'TENANT_NOT_FOUND',
        }),
        ...same("the bin's `#!/usr/bin/env node` starts the Node under test", r.cli?.node, r.cli?.appNode),
      ];
    },
  },
  'llm-local-provider': {
    packages: ['@mt-paas/providers-llm'],
    install: [],
    files: { 'app.mts': LLM_APP },
    expect: (r) => [
      ...same(
        'local answer',
        { text: r.text, model: r.model },
        { text: 'The library opens at 9 am.', model: 'local:extractive' },
      ),
      ...same('streamed answer', r.streamed, 'Exams start on June 10.'),
      ...same('embedding dimensions', r.dimensions, [16, 16]),
      ...(r.usage?.totalTokens > 0 ? [] : [`usage not reported: ${JSON.stringify(r.usage)}`]),
    ],
  },
};

function pick(response) {
  return { status: response?.status, code: response?.body?.error?.code };
}

function pickReason(response) {
  return { ...pick(response), reason: response?.body?.error?.details?.reason };
}

function same(what, actual, expected) {
  return JSON.stringify(actual) === JSON.stringify(expected)
    ? []
    : [`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
}

/** The packages among `names` that have no SMOKE entry (each must have one to be released). */
export function missingSmoke(names) {
  return [...names].filter((name) => !Object.hasOwn(SMOKE, name));
}

// ---------------------------------------------------------------------------------------------------------
// Pure checks (exported for tests)
// ---------------------------------------------------------------------------------------------------------

const DEP_FIELDS = ['dependencies', 'peerDependencies', 'optionalDependencies', 'devDependencies'];

/** Problems of a published manifest: unpublishable ranges, and internal ranges that miss the published version. */
export function manifestProblems(manifest, publishedVersions) {
  const problems = [];
  for (const field of DEP_FIELDS) {
    for (const [name, range] of Object.entries(manifest[field] ?? {})) {
      if (/^(workspace|catalog|link|file):/.test(String(range))) {
        problems.push(`${field}.${name} = "${range}" (a workspace-only range was published)`);
      } else if (field !== 'devDependencies' && publishedVersions.has(name)) {
        const version = publishedVersions.get(name);
        if (![`^${version}`, `~${version}`, version].includes(range)) {
          problems.push(
            `${field}.${name} = "${range}" does not point at the version just published (${version})`,
          );
        }
      }
    }
  }
  return problems;
}

// The keyword must not be a string's content or a property (`planTransition("import", …)`, `'import' | 'move'`,
// `x.require(…)`), and a module specifier never holds white space: without both, the text between two string
// literals that happen to hold the word "import" was read as a specifier.
const KEYWORD = String.raw`(?<![\w$.'"\x60])`;
const SPECIFIER = String.raw`['"]([^'"\s]+)['"]`;
const IMPORT_PATTERNS = [
  new RegExp(String.raw`${KEYWORD}\b(?:import|export)\s+(?:type\s+)?[^'";]*?\bfrom\s*${SPECIFIER}`, 'g'),
  new RegExp(String.raw`${KEYWORD}\bimport\s*${SPECIFIER}`, 'g'),
  new RegExp(String.raw`${KEYWORD}\bimport\s*\(\s*${SPECIFIER}\s*\)`, 'g'),
  new RegExp(String.raw`${KEYWORD}\brequire\s*\(\s*${SPECIFIER}\s*\)`, 'g'),
];

/** The package names a module's source imports (bare specifiers only, subpaths reduced to the package). */
export function importedPackages(source) {
  const names = new Set();
  for (const pattern of IMPORT_PATTERNS) {
    for (const match of source.matchAll(pattern)) {
      const specifier = match[1];
      if (specifier.startsWith('.') || specifier.startsWith('/') || BUILTINS.has(specifier)) continue;
      if (specifier.startsWith('node:') || /^[a-z]+:/.test(specifier)) continue;
      const parts = specifier.split('/');
      names.add(specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]);
    }
  }
  return names;
}

/** Packages that a built package dir imports (in dist/ .js and .d.ts) without declaring them. */
export function undeclaredImports(packageDir) {
  const manifest = readJson(join(packageDir, 'package.json'));
  const declared = new Set([
    manifest.name,
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
    ...Object.keys(manifest.optionalDependencies ?? {}),
  ]);
  const found = [];
  for (const file of walk(packageDir)) {
    if (
      !/\.(m|c)?js$|\.d\.(m|c)?ts$/.test(file) ||
      relative(packageDir, file).split(sep).includes('node_modules')
    ) {
      continue;
    }
    for (const name of importedPackages(readFileSync(file, 'utf8'))) {
      // A type-only import of a declared runtime package's typings (`@types/pg` for `pg`) is the vendor's to add.
      if (!declared.has(name)) found.push({ file: relative(packageDir, file), name });
    }
  }
  return found;
}

function* walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile()) yield path;
  }
}

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

// ---------------------------------------------------------------------------------------------------------
// Process plumbing
// ---------------------------------------------------------------------------------------------------------

/** Environment for child tools: without the npm_* / pnpm variables a `pnpm run` parent sets. */
function cleanEnv(extra = {}) {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|pnpm_|PNPM_)/i.test(key) || key === 'NODE_PATH' || key === 'NODE_OPTIONS') continue;
    env[key] = value;
  }
  return {
    ...env,
    NPM_CONFIG_UPDATE_NOTIFIER: 'false',
    NPM_CONFIG_FUND: 'false',
    NPM_CONFIG_AUDIT: 'false',
    ...extra,
  };
}

/** Runs a command, resolving with { code, stdout, stderr } (never rejects on a non-zero exit). */
function run(command, args, { cwd, env = cleanEnv(), timeoutMs = 300_000, duringCleanup = false } = {}) {
  return new Promise((resolvePromise, reject) => {
    if (stopping && !duringCleanup) {
      reject(new Error('stopping: no new command'));
      return;
    }
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      children.delete(child);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolvePromise({ code: code ?? (signal ? 128 : 1), stdout, stderr, signal });
    });
  });
}

function tail(text, lines = 25) {
  return text.trim().split('\n').slice(-lines).join('\n');
}

async function mustRun(what, command, args, options) {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(`${what} failed (exit ${result.code}):\n${tail(`${result.stdout}\n${result.stderr}`)}`);
  }
  return result;
}

const children = new Set();
let stopping = false;
const cleanups = [];
let cleanedUp = false;

async function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const task of cleanups.reverse()) {
    try {
      await task();
    } catch (error) {
      console.error(`cleanup: ${error.message}`);
    }
  }
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    console.error(`\nrelease rehearsal: ${signal}, cleaning up`);
    stopping = true;
    for (const child of children) child.kill('SIGTERM');
    cleanup().finally(() => process.exit(130));
  });
}

function freePort() {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePromise(port));
    });
  });
}

async function pool(items, concurrency, worker) {
  const results = new Array(items.length);
  let next = 0;
  async function lane() {
    while (next < items.length) {
      const index = next++;
      results[index] = await worker(items[index]);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
  return results;
}

// ---------------------------------------------------------------------------------------------------------
// The workspace
// ---------------------------------------------------------------------------------------------------------

/** Public packages under packages/*, with their internal (@mt-paas) runtime dependencies. */
export function discoverPackages(repo) {
  const dir = join(repo, 'packages');
  const packages = new Map();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const manifestPath = join(dir, entry.name, 'package.json');
    if (!entry.isDirectory() || !existsSync(manifestPath)) continue;
    const manifest = readJson(manifestPath);
    if (manifest.private) continue;
    const internal = Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies }).filter((name) =>
      name.startsWith(`${SCOPE}/`),
    );
    packages.set(manifest.name, {
      name: manifest.name,
      dir: join('packages', entry.name),
      manifest,
      internal,
    });
  }
  return packages;
}

function closure(packages, roots) {
  const seen = new Set();
  const visit = (name) => {
    if (seen.has(name)) return;
    const pkg = packages.get(name);
    if (!pkg) throw new Error(`--only ${name}: no public package of that name under packages/`);
    seen.add(name);
    for (const dependency of pkg.internal) if (packages.has(dependency)) visit(dependency);
  };
  for (const root of roots) visit(root);
  return seen;
}

function readCatalog(repo) {
  const catalog = {};
  let inCatalog = false;
  for (const line of readFileSync(join(repo, 'pnpm-workspace.yaml'), 'utf8').split('\n')) {
    if (/^catalog:\s*$/.test(line)) inCatalog = true;
    else if (/^\S/.test(line)) inCatalog = false;
    else if (inCatalog) {
      const match = /^\s+"?([^"#:\s]+)"?:\s*(\S+)/.exec(line);
      if (match) catalog[match[1]] = match[2].replace(/^["']|["']$/g, '');
    }
  }
  return catalog;
}

/**
 * Copies the working tree (in a git checkout: tracked + untracked, not ignored files; elsewhere: everything
 * but node_modules, dist and .git) and each rehearsed package's built output.
 */
function copyWorkingTree(repo, destination, packages) {
  let files;
  try {
    files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], {
      cwd: repo,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .split('\0')
      .filter(Boolean);
  } catch {
    files = undefined;
  }
  if (files === undefined) {
    cpSync(repo, destination, {
      recursive: true,
      filter: (source) => !/(^|[\\/])(node_modules|dist|\.git|\.turbo)$/.test(relative(repo, source)),
    });
  }
  for (const file of files ?? []) {
    const from = join(repo, file);
    if (!existsSync(from) || statSync(from).isDirectory()) continue;
    mkdirSync(dirname(join(destination, file)), { recursive: true });
    cpSync(from, join(destination, file));
  }
  for (const pkg of packages) {
    const dist = join(repo, pkg.dir, 'dist');
    if (!existsSync(dist)) throw new Error(`${pkg.name}: no ${pkg.dir}/dist — run \`pnpm run build\` first`);
    cpSync(dist, join(destination, pkg.dir, 'dist'), { recursive: true });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Verdaccio
// ---------------------------------------------------------------------------------------------------------

async function startRegistry(work) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const config = join(work, 'verdaccio.yaml');
  writeFileSync(
    config,
    [
      `storage: ${JSON.stringify(join(work, 'storage'))}`,
      'auth:',
      '  htpasswd:',
      `    file: ${JSON.stringify(join(work, 'htpasswd'))}`,
      '    max_users: 10',
      'uplinks: {}',
      'packages:',
      `  '${SCOPE}/*':`,
      '    access: $all',
      '    publish: $authenticated',
      '    unpublish: $authenticated',
      "  '**':",
      '    access: $all',
      'web:',
      '  enable: false',
      'log: { type: stdout, format: json, level: warn }',
      `listen: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const bin = requireFromTool.resolve('verdaccio/bin/verdaccio');
  const child = spawn(process.execPath, [bin, '--config', config, '--listen', `127.0.0.1:${port}`], {
    cwd: work,
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise((resolvePromise) => child.on('exit', resolvePromise));
  cleanups.push(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Verdaccio exited (${child.exitCode}):\n${tail(output)}`);
    try {
      const response = await fetch(`${url}-/ping`);
      if (response.ok) break;
    } catch {}
    if (Date.now() > deadline)
      throw new Error(`Verdaccio did not answer on ${url} within 30 s:\n${tail(output)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  // A throwaway user: the token only exists in this temp registry.
  const user = `rehearsal${process.pid}`;
  const response = await fetch(`${url}-/user/org.couchdb.user:${user}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      name: user,
      password: `pw-${Math.random().toString(36).slice(2)}`,
      type: 'user',
      roles: [],
    }),
  });
  const body = await response.json();
  if (!response.ok || !body.token)
    throw new Error(`Verdaccio refused the throwaway user: ${JSON.stringify(body)}`);
  return { url, port, token: body.token, storage: join(work, 'storage') };
}

// ---------------------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------------------

async function nodeBinaries(work, wantNode24) {
  const binaries = [{ label: `node ${process.versions.node}`, path: process.execPath }];
  if (!wantNode24) return binaries;
  const result = await mustRun(
    'npm exec --package=node@24',
    'npm',
    [
      'exec',
      '--yes',
      '--package=node@24',
      '--',
      'node',
      '-p',
      'process.execPath + " " + process.versions.node',
    ],
    { cwd: work },
  );
  const [path, version] = result.stdout.trim().split('\n').pop().split(' ');
  binaries.push({ label: `node ${version}`, path });
  return binaries;
}

function tsconfig(files) {
  return `${JSON.stringify(
    {
      compilerOptions: {
        target: 'ES2022',
        lib: ['ES2023', 'DOM'],
        module: 'nodenext',
        moduleResolution: 'nodenext',
        strict: true,
        skipLibCheck: false,
        noEmitOnError: false,
        types: ['node'],
        outDir: '.',
      },
      files,
    },
    null,
    2,
  )}\n`;
}

/** An app importing every entry point of a package, printing which ones loaded. */
function aloneApp(manifest) {
  const subpaths = Object.keys(manifest.exports ?? { '.': {} }).filter(
    (key) => !key.endsWith('package.json') && !key.includes('*'),
  );
  const specifiers = subpaths.map((subpath) =>
    subpath === '.' ? manifest.name : `${manifest.name}${subpath.slice(1)}`,
  );
  return {
    specifiers,
    probe: `const specifiers = ${JSON.stringify(specifiers)};
const result = {};
for (const specifier of specifiers) {
  try {
    const module = await import(specifier);
    result[specifier] = { ok: true, exports: Object.keys(module).length };
  } catch (error) {
    result[specifier] = { ok: false, code: error.code, message: String(error.message).split('\\n')[0] };
  }
}
console.log('${RESULT_PREFIX}' + JSON.stringify(result));
`,
  };
}

function typesApp(specifiers) {
  const lines = specifiers.map((specifier, index) => `import * as entry${index} from '${specifier}';`);
  lines.push(`export const entries = [${specifiers.map((_, index) => `entry${index}`).join(', ')}];`);
  lines.push('console.log(entries.length);');
  return `${lines.join('\n')}\n`;
}

function parseResult(stdout) {
  const line = stdout.split('\n').find((candidate) => candidate.startsWith(RESULT_PREFIX));
  return line === undefined ? undefined : JSON.parse(line.slice(RESULT_PREFIX.length));
}

function missingPackageOf(message) {
  const match = /Cannot find (?:package|module) '([^']+)'/.exec(message ?? '');
  if (!match) return undefined;
  const parts = match[1].split('/');
  return match[1].startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Node's node_modules lookup for a package name, from a directory up to the file system root. */
export function lookUp(fromDir, name) {
  for (let current = fromDir; ; current = dirname(current)) {
    if (!current.endsWith(`${sep}node_modules`)) {
      const candidate = join(current, 'node_modules', name, 'package.json');
      if (existsSync(candidate)) return dirname(candidate);
    }
    if (dirname(current) === current) return undefined;
  }
}

function du(dir, nested = true) {
  let bytes = 0;
  let files = 0;
  for (const file of walk(dir)) {
    if (!nested && relative(dir, file).split(sep).includes('node_modules')) continue;
    bytes += statSync(file).size;
    files += 1;
  }
  return { bytes, files };
}

/**
 * Installs a scenario from the registry in its own folder and runs every check. Returns
 * { name, packages, problems: [{ pkg, message }], stats }.
 */
async function runScenario(scenario, context) {
  const { registry, work, catalog, published, nodes } = context;
  const dir = join(work, 'scenarios', scenario.name);
  mkdirSync(dir, { recursive: true });
  const problems = [];
  const fail = (pkg, message) => problems.push(classify({ pkg, message }));
  const rangeOf = (name) => catalog[name] ?? 'latest';
  const dependencies = {};
  for (const name of scenario.packages) dependencies[name] = published.get(name);
  for (const spec of scenario.install) dependencies[spec] = rangeOf(spec);
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify(
      {
        name: `rehearsal-${scenario.name}`,
        private: true,
        type: 'module',
        dependencies,
        devDependencies: { '@types/node': catalog['@types/node'] ?? '^20.19.0' },
      },
      null,
      2,
    )}\n`,
  );
  writeFileSync(join(dir, '.npmrc'), `${SCOPE}:registry=${registry.url}\n`);
  for (const [file, text] of Object.entries(scenario.files)) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
  const blame = scenario.packages.join(' + ');

  const install = await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir });
  if (install.code !== 0) {
    fail(blame, `npm install failed:\n${tail(install.stderr || install.stdout)}`);
    return { name: scenario.name, packages: scenario.packages, problems };
  }

  // 1. The installed manifests: real ranges, pointing at what was just published.
  for (const name of scenario.packages) {
    const installedDir = join(dir, 'node_modules', name);
    const manifest = readJson(join(installedDir, 'package.json'));
    if (manifest.version !== published.get(name)) {
      fail(name, `npm installed ${manifest.version}, the rehearsal published ${published.get(name)}`);
    }
    for (const problem of manifestProblems(manifest, published)) fail(name, problem);
    // 2. No undeclared dependency, whatever happens to be hoisted beside it.
    for (const { file, name: imported } of undeclaredImports(installedDir)) {
      fail(name, `${file} imports "${imported}", which is not in its dependencies or peerDependencies`);
    }
  }

  // 3. Every declared dependency, and the package itself, resolves inside the scenario folder (Node's
  //    node_modules lookup, walked up from the installed package: nothing from the workspace or a parent folder).
  for (const name of scenario.packages) {
    const installedDir = join(dir, 'node_modules', name);
    const manifest = readJson(join(installedDir, 'package.json'));
    const own = createRequire(join(dir, 'package.json')).resolve(`${name}/package.json`);
    if (!own.startsWith(dir + sep)) fail(name, `resolves outside the install folder: ${own}`);
    for (const dependency of Object.keys(manifest.dependencies ?? {})) {
      const where = lookUp(installedDir, dependency);
      if (where === undefined) fail(name, `its dependency "${dependency}" was not installed`);
      else if (!where.startsWith(dir + sep))
        fail(name, `"${dependency}" resolves outside the install folder: ${where}`);
    }
  }

  // 4. Types resolve (moduleResolution nodenext) and 5. the app runs on each Node.
  const stats = {};
  let apps = [];
  if (scenario.alone) {
    const manifest = readJson(join(dir, 'node_modules', scenario.packages[0], 'package.json'));
    const { specifiers, probe } = aloneApp(manifest);
    writeFileSync(join(dir, 'probe.mjs'), probe);
    const probed = await run(process.execPath, ['probe.mjs'], { cwd: dir });
    const loaded = parseResult(probed.stdout);
    if (loaded === undefined) {
      fail(blame, `import probe crashed:\n${tail(probed.stderr)}`);
      return { name: scenario.name, packages: scenario.packages, problems };
    }
    const optionalPeers = new Set(Object.keys(manifest.peerDependencies ?? {}));
    const usable = [];
    for (const specifier of specifiers) {
      const entry = loaded[specifier];
      if (entry.ok) usable.push(specifier);
      else if (optionalPeers.has(missingPackageOf(entry.message)))
        stats[specifier] = `needs optional peer ${missingPackageOf(entry.message)}`;
      else fail(manifest.name, `import "${specifier}" fails: ${entry.code ?? ''} ${entry.message}`);
    }
    if (!usable.includes(manifest.name))
      return { name: scenario.name, packages: scenario.packages, problems, stats };
    writeFileSync(join(dir, 'types.mts'), typesApp(usable));
    apps = [
      {
        source: 'types.mts',
        run: 'probe.mjs',
        check: (r) =>
          specifiers
            .filter((s) => !r?.[s]?.ok && !stats[s])
            .map((s) => `import "${s}" fails: ${r?.[s]?.message}`),
      },
    ];
    Object.assign(stats, installedRuntime(dir));
    stats.unpacked = du(join(dir, 'node_modules', manifest.name), false);
  } else {
    apps = [{ source: 'app.mts', run: 'app.mjs', check: scenario.expect }];
  }
  for (const app of apps) {
    writeFileSync(join(dir, 'tsconfig.json'), tsconfig([app.source]));
    const tsc = await run(
      process.execPath,
      [requireFromTool.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json'],
      {
        cwd: dir,
      },
    );
    const diagnostics = tscDiagnostics(tsc.stdout);
    const optionalPeers = new Set(
      scenario.packages.flatMap((name) =>
        Object.keys(readJson(join(dir, 'node_modules', name, 'package.json')).peerDependencies ?? {}),
      ),
    );
    const ours = diagnostics.filter((d) => {
      if (d.file.startsWith('node_modules/') && !d.file.startsWith(`node_modules/${SCOPE}/`)) return false;
      // Installed alone, an entry point for an optional peer (middleware/fastify) cannot see that peer's types.
      const peer =
        scenario.alone && d.code === 'TS2307' ? /Cannot find module '([^']+)'/.exec(d.text)?.[1] : undefined;
      if (
        peer &&
        optionalPeers.has(peer.startsWith('@') ? peer.split('/').slice(0, 2).join('/') : peer.split('/')[0])
      ) {
        stats[`${d.file.replace(/^node_modules\//, '')} types`] =
          `need optional peer ${peer} (not installed here)`;
        return false;
      }
      return true;
    });
    if (tsc.code !== 0 && diagnostics.length === 0) {
      fail(blame, `tsc crashed:\n${tail(tsc.stdout + tsc.stderr)}`);
      continue;
    }
    const theirs = diagnostics.length - ours.length;
    if (theirs > 0) stats.thirdPartyTypeErrors = theirs;
    if (ours.length > 0) {
      for (const d of ours) {
        const owner = /^node_modules\/(@mt-paas\/[^/]+)/.exec(d.file)?.[1] ?? blame;
        fail(owner, `tsc (moduleResolution nodenext, skipLibCheck false): ${d.text}`);
      }
      // tsc still emitted the .mjs: run it, a type problem does not hide a runtime one.
    }
    for (const node of nodes) {
      const env = cleanEnv(context.env?.(scenario) ?? {});
      const before = scenario.postgres ? await context.createDatabase(dir, env) : undefined;
      try {
        const ran = await run(node.path, [app.run], {
          cwd: dir,
          env: { ...env, ...before },
          timeoutMs: 120_000,
        });
        const result = parseResult(ran.stdout);
        if (ran.code !== 0 || result === undefined) {
          fail(
            blame,
            `${app.run} on ${node.label} failed (exit ${ran.code}):\n${tail(ran.stderr || ran.stdout)}`,
          );
          continue;
        }
        for (const problem of app.check(result)) fail(blame, `${app.run} on ${node.label}: ${problem}`);
      } finally {
        if (before) await context.dropDatabase(dir, before);
      }
    }
  }
  return { name: scenario.name, packages: scenario.packages, problems, stats };
}

/** What `npm install <pkg>` brought in for the package (the scenario's dev-only @types/node left out). */
/**
 * tsc's diagnostics as { file, code, text }. The check runs with skipLibCheck false so that the published
 * .d.ts files of @mt-paas packages are checked in full; errors inside third-party typings (drizzle-orm's
 * sqlite/mysql typings do not check under strict) are counted, not blamed on our packages.
 */
function tscDiagnostics(output) {
  const diagnostics = [];
  for (const line of output.split('\n')) {
    const match = /^(\S[^(]*)\(\d+,\d+\): error (TS\d+): /.exec(line);
    if (match) diagnostics.push({ file: match[1], code: match[2], text: line });
    else if (diagnostics.length > 0 && /^\s/.test(line)) diagnostics.at(-1).text += `\n${line}`;
  }
  return diagnostics;
}

function installedRuntime(dir) {
  const lock = readJson(join(dir, 'package-lock.json'));
  const paths = Object.entries(lock.packages ?? {})
    .filter(([path, entry]) => path !== '' && !entry.dev && !entry.link)
    .map(([path]) => path);
  return {
    installed: paths.length,
    nodeModules: paths.reduce((sum, path) => sum + du(join(dir, path), false).bytes, 0),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------------------

function formatBytes(bytes) {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${(bytes / 1024).toFixed(1)} kB`;
}

function sizesTable(rows) {
  const lines = [
    '| package | tarball | unpacked (files) | runtime deps | peer deps (optional) | packages installed by `npm install <pkg>` | their size on disk |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const row of rows) {
    lines.push(
      `| \`${row.name}\` | ${formatBytes(row.tarball)} | ${formatBytes(row.unpacked.bytes)} (${row.unpacked.files}) | ${row.dependencies} | ${row.peers} | ${row.installed} | ${formatBytes(row.nodeModules)} |`,
    );
  }
  return lines.join('\n');
}

function updateDocs(repo, table) {
  const path = join(repo, 'docs', 'releasing.md');
  if (!existsSync(path)) return false;
  const text = readFileSync(path, 'utf8');
  const begin = text.indexOf(DOC_BEGIN);
  const end = text.indexOf(DOC_END);
  if (begin < 0 || end < begin) return false;
  writeFileSync(path, `${text.slice(0, begin + DOC_BEGIN.length)}\n${table}\n${text.slice(end)}`);
  return true;
}

async function main() {
  const { values } = parseArgs({
    options: {
      only: { type: 'string', multiple: true },
      repo: { type: 'string' },
      'no-docs': { type: 'boolean', default: false },
      'no-node24': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      concurrency: { type: 'string', default: '2' },
    },
  });
  const started = Date.now();
  const repo = resolve(values.repo ?? TOOL_ROOT);
  const all = discoverPackages(repo);
  const only = values.only?.map((name) => (name.startsWith('@') ? name : `${SCOPE}/${name}`));
  const rehearsed = only ? closure(all, only) : new Set(all.keys());
  const targets = only ? new Set(only) : rehearsed;
  const log = (message) =>
    console.log(`[rehearsal ${((Date.now() - started) / 1000).toFixed(0).padStart(3)}s] ${message}`);
  const failures = [];

  // Every published package needs a smoke entry.
  for (const name of missingSmoke(targets)) {
    failures.push({
      pkg: name,
      message: `no smoke scenario: add "${name}" to SMOKE in scripts/release-rehearsal.mjs (a vendor scenario of its one-line setup, or at least { scenarios: [], alone: true, why })`,
    });
  }

  const work = mkdtempSync(join(tmpdir(), 'mt-paas-rehearsal-'));
  if (!values.keep) cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  else log(`keeping ${work}`);
  const summary = { published: new Map(), scenarios: [] };
  let rehearsedAll = false;
  try {
    // 1. Scratch copy of the workspace.
    const scratch = join(work, 'repo');
    copyWorkingTree(
      repo,
      scratch,
      [...rehearsed].map((name) => all.get(name)),
    );
    for (const [name, pkg] of all) {
      if (rehearsed.has(name)) continue;
      const path = join(scratch, pkg.dir, 'package.json');
      writeFileSync(path, `${JSON.stringify({ ...readJson(path), private: true }, null, 2)}\n`);
    }
    const changesetDir = join(scratch, '.changeset');
    const pendingMajor = new Set();
    for (const file of readdirSync(changesetDir).filter((f) => f.endsWith('.md') && f !== 'README.md')) {
      const front = /^---\n([\s\S]*?)\n---/.exec(readFileSync(join(changesetDir, file), 'utf8'))?.[1] ?? '';
      const bumps = [...front.matchAll(/^\s*["']?([^"':]+)["']?\s*:\s*(\w+)/gm)].map((m) => [
        m[1].trim(),
        m[2],
      ]);
      if (bumps.some(([name]) => all.has(name) && !rehearsed.has(name))) rmSync(join(changesetDir, file));
      else for (const [name, bump] of bumps) if (bump === 'major') pendingMajor.add(name);
    }
    // The rehearsal changeset: a major bump of the package everything depends on (so every dependent's range
    // must follow it), a patch for the others — versions stay independent.
    const order = [...rehearsed].sort((a, b) => all.get(a).internal.length - all.get(b).internal.length);
    const base =
      order.find((name) => [...rehearsed].some((other) => all.get(other).internal.includes(name))) ??
      order[0];
    writeFileSync(
      join(changesetDir, 'zz-release-rehearsal.md'),
      `---\n${order.map((name) => `"${name}": ${name === base ? 'major' : 'patch'}`).join('\n')}\n---\n\nRelease rehearsal (never committed).\n`,
    );
    log(`scratch copy in ${scratch}; rehearsing ${rehearsed.size} package(s): ${[...rehearsed].join(', ')}`);
    // pnpm resolves workspace: ranges at publish time from the installed workspace links.
    await mustRun(
      'pnpm install (scratch copy)',
      'pnpm',
      ['install', '--no-frozen-lockfile', '--prefer-offline', '--ignore-scripts'],
      {
        cwd: scratch,
        env: cleanEnv({ CI: 'true' }),
      },
    );
    log('pnpm install in the scratch copy: done');

    const changeset = join(scratch, 'node_modules', '.bin', 'changeset');
    await mustRun('changeset version', changeset, ['version'], { cwd: scratch });
    const before = new Map([...rehearsed].map((name) => [name, all.get(name).manifest.version]));
    const versioned = discoverPackages(scratch);
    for (const name of rehearsed) {
      summary.published.set(name, versioned.get(name).manifest.version);
      if (versioned.get(name).manifest.version === before.get(name)) {
        failures.push({
          pkg: name,
          message: `changeset version did not bump it (still ${before.get(name)})`,
        });
      }
    }
    // Independent versions: the major bump of the base package must not drag the others along.
    for (const name of rehearsed) {
      if (
        name !== base &&
        !pendingMajor.has(name) &&
        summary.published.get(name) === summary.published.get(base)
      ) {
        failures.push({
          pkg: name,
          message: `versioned ${summary.published.get(name)} like ${base}, which alone got a major bump: versions are not independent (a "fixed" or "linked" group in .changeset/config.json?)`,
        });
      }
    }
    log(`changeset version: ${[...summary.published].map(([n, v]) => `${n}@${v}`).join(', ')}`);

    // 2. The local registry and the publish.
    const registry = await startRegistry(work);
    log(`verdaccio on ${registry.url}`);
    const registryHost = registry.url.replace(/^http:/, '');
    writeFileSync(
      join(scratch, '.npmrc'),
      `${readFileSync(join(scratch, '.npmrc'), 'utf8')}\n${SCOPE}:registry=${registry.url}\n${registryHost}:_authToken=${registry.token}\n`,
    );
    const publishEnv = cleanEnv({ [`npm_config_${SCOPE}:registry`]: registry.url });
    const publish = await run(changeset, ['publish', '--no-git-tag'], { cwd: scratch, env: publishEnv });
    for (const name of rehearsed) {
      const version = summary.published.get(name);
      const response = await fetch(`${registry.url}${name.replace('/', '%2f')}`);
      const packument = response.ok ? await response.json() : undefined;
      const manifest = packument?.versions?.[version];
      if (!manifest) {
        failures.push({
          pkg: name,
          message: `not on the registry at ${version} after changeset publish:\n${tail(publish.stdout + publish.stderr, 15)}`,
        });
        continue;
      }
      for (const problem of manifestProblems(manifest, summary.published))
        failures.push({ pkg: name, message: problem });
    }
    log(`changeset publish: exit ${publish.code}`);
    if (failures.some((f) => f.message.includes('not on the registry'))) throw new Error('publish failed');

    // 3. Scenarios, each in its own folder outside the workspace.
    const catalog = readCatalog(repo);
    const nodes = await nodeBinaries(work, !values['no-node24']);
    log(`runtimes: ${nodes.map((n) => n.label).join(', ')}`);
    const scenarios = [];
    for (const name of targets) {
      scenarios.push({
        name: `alone-${name.split('/')[1]}`,
        packages: [name],
        install: [],
        files: {},
        alone: true,
      });
      for (const id of Object.hasOwn(SMOKE, name) ? SMOKE[name].scenarios : []) {
        const scenario = SCENARIOS[id];
        if (!scenario) {
          failures.push({
            pkg: name,
            message: `SMOKE names scenario "${id}", which SCENARIOS does not define`,
          });
        } else if (
          scenario.packages.every((p) => rehearsed.has(p)) &&
          !scenarios.some((s) => s.name === id)
        ) {
          scenarios.push({ name: id, ...scenario });
        }
      }
    }
    let databases = 0;
    const context = {
      registry,
      work,
      catalog,
      published: summary.published,
      nodes,
      async createDatabase(dir, env) {
        const database = `mtp_rehearsal_${process.pid}_${++databases}`;
        const role = `${database}_app`;
        const admin = `postgres://postgres@127.0.0.1:5432/postgres`;
        await mustRun('create scratch database', process.execPath, ['admin.mjs', 'create', admin, database], {
          cwd: dir,
          env,
        });
        let dropped;
        const drop = () => {
          dropped ??= run(process.execPath, ['admin.mjs', 'drop', admin, database, role], {
            cwd: dir,
            env,
            duringCleanup: true,
          });
          return dropped;
        };
        cleanups.push(drop);
        return {
          DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${database}`,
          APP_DATABASE_URL: `postgres://${role}:rehearsal@127.0.0.1:5432/${database}`,
          APP_ROLE: role,
          drop,
        };
      },
      async dropDatabase(_dir, created) {
        const result = await created.drop();
        if (result.code !== 0) console.error(`dropping the scratch database failed: ${tail(result.stderr)}`);
      },
    };
    log(`${scenarios.length} scenario(s): ${scenarios.map((s) => s.name).join(', ')}`);
    summary.scenarios = await pool(scenarios, Number(values.concurrency), async (scenario) => {
      const start = Date.now();
      let result;
      try {
        result = await runScenario(scenario, context);
      } catch (error) {
        result = {
          name: scenario.name,
          packages: scenario.packages,
          problems: [{ pkg: scenario.packages.join(' + '), message: error.message }],
        };
      }
      result.seconds = Math.round((Date.now() - start) / 1000);
      log(`${result.problems.some(isOpen) ? '✗' : '✓'} ${scenario.name} (${result.seconds}s)`);
      return result;
    });
    for (const scenario of summary.scenarios) {
      for (const problem of scenario.problems) failures.push({ ...problem, scenario: scenario.name });
    }
    rehearsedAll = true;

    // 4. Sizes, into docs/releasing.md.
    const rows = [];
    for (const scenario of summary.scenarios) {
      if (!scenario.name.startsWith('alone-') || scenario.stats?.installed === undefined) continue;
      const name = scenario.packages[0];
      const version = summary.published.get(name);
      const manifest = versioned.get(name).manifest;
      const tarball = join(registry.storage, name, `${name.split('/')[1]}-${version}.tgz`);
      const peers = Object.keys(manifest.peerDependencies ?? {});
      const optional = peers.filter((p) => manifest.peerDependenciesMeta?.[p]?.optional);
      rows.push({
        name,
        version,
        tarball: existsSync(tarball) ? statSync(tarball).size : 0,
        unpacked: scenario.stats.unpacked,
        dependencies: Object.keys(manifest.dependencies ?? {}).length,
        peers: `${peers.length} (${optional.length})`,
        installed: scenario.stats.installed,
        nodeModules: scenario.stats.nodeModules,
      });
    }
    rows.sort((a, b) => a.name.localeCompare(b.name));
    if (rows.length > 0) {
      console.log(`\n${sizesTable(rows)}\n`);
      if (!only && !values['no-docs'] && updateDocs(repo, sizesTable(rows)))
        log('sizes written to docs/releasing.md');
    }
  } catch (error) {
    if (error.message !== 'publish failed')
      failures.push({ pkg: '(rehearsal)', message: error.stack ?? String(error) });
  } finally {
    await cleanup();
  }

  // Known, reported defects are printed, not failed; a stale entry fails a full run.
  const known = failures.filter((f) => f.known);
  const open = failures.filter(isOpen);
  if (!only && rehearsedAll) {
    for (const defect of KNOWN_DEFECTS.filter((d) => !usedDefects.has(d))) {
      open.push({
        pkg: defect.pkg,
        message: `KNOWN_DEFECTS entry ${defect.match} no longer occurs: the package was fixed, remove the entry from scripts/release-rehearsal.mjs`,
      });
    }
  }

  // Summary.
  console.log('\n================ release rehearsal ================');
  for (const [name, version] of summary.published) console.log(`published ${name}@${version}`);
  for (const scenario of summary.scenarios) {
    console.log(
      `${scenario.problems.some(isOpen) ? '✗' : '✓'} ${scenario.name.padEnd(28)} ${scenario.packages.join(', ')} (${scenario.seconds}s)`,
    );
    for (const [what, note] of Object.entries(scenario.stats ?? {})) {
      if (typeof note === 'string') console.log(`    note: ${what}: ${note}`);
      else if (what === 'thirdPartyTypeErrors')
        console.log(`    note: ${note} tsc error(s) inside third-party typings (not ours; ignored)`);
    }
  }
  if (known.length > 0) {
    console.log('\nKNOWN DEFECTS (reported to the package owners; not failing the run):');
    const seenNotes = new Set();
    for (const entry of known) {
      const first = entry.message.split('\n')[0];
      console.log(`! ${entry.pkg} ${entry.scenario ? `[${entry.scenario}] ` : ''}${first}`);
      if (!seenNotes.has(entry.known)) console.log(`    → ${entry.known}`);
      seenNotes.add(entry.known);
    }
  }
  if (open.length > 0) {
    console.log('\nFAILED:');
    const byPackage = new Map();
    for (const failure of open) byPackage.set(failure.pkg, [...(byPackage.get(failure.pkg) ?? []), failure]);
    for (const [pkg, list] of byPackage) {
      console.log(`✗ ${pkg}`);
      for (const failure of list) {
        console.log(
          `  - ${failure.scenario ? `[${failure.scenario}] ` : ''}${failure.message.split('\n').join('\n    ')}`,
        );
      }
    }
  }
  const passed = summary.scenarios.filter((s) => !s.problems.some(isOpen)).length;
  console.log(
    `\nrelease rehearsal ${open.length === 0 ? 'OK' : 'FAILED'}: ${passed}/${summary.scenarios.length} scenarios ok, ${summary.published.size} packages published, ${open.length} problem(s), ${known.length} known defect(s), ${Math.round((Date.now() - started) / 1000)}s`,
  );
  process.exitCode = open.length === 0 ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
