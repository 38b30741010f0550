/**
 * A child process for the crash-window test: a framework instance on the test's Postgres that receives one
 * signed marketplace delivery and hangs in the deferred action — before it (`before`: the receipt is
 * committed, nothing else happened) or after it (`after`: the action is done, its job is not yet marked) —
 * printing "HANGING" on stdout; the test then SIGKILLs it.
 */
import { EVENTS_ROUTE, signWebhook } from '@mt-paas/marketplace';
import Fastify from 'fastify';
import { createServiceFramework } from '../index.js';
import { FIXTURE_MIGRATIONS, seedAdmin } from './app.js';

interface ChildConfig {
  config: string;
  secret: string;
  webhookId: string;
  type: string;
  data: Record<string, unknown>;
  hang: 'before' | 'after';
}

const input = JSON.parse(process.env.MTP_CHILD ?? '{}') as ChildConfig;
const mt = await createServiceFramework({
  config: input.config,
  env: {},
  appRole: 'mtp_fw_app',
  migrationsFolder: FIXTURE_MIGRATIONS,
  hooks: seedAdmin,
  start: false,
});

const hang = async (): Promise<never> => {
  process.stdout.write('HANGING\n');
  return new Promise<never>(() => {});
};
// The deferred actions call these (by property, at call time): the process "dies" at that point.
type Target = Record<string, (...args: unknown[]) => Promise<unknown>>;
for (const [owner, method] of [
  [mt.control, 'block'],
  [mt.control, 'unblock'],
  [mt.provisioner, 'suspend'],
  [mt.provisioner, 'offboard'],
] as const) {
  const target = owner as unknown as Target;
  const original = target[method]!.bind(owner);
  target[method] = async (...args: unknown[]) => {
    if (input.hang === 'after') await original(...args);
    return hang();
  };
}
const events = mt.events as unknown as Target;
const publish = events.publish!.bind(mt.events);
events.publish = async (...args: unknown[]) => {
  const event = args[0] as { type: string };
  if (event.type !== 'tenant.changed') return publish(...args);
  if (input.hang === 'after') await publish(...args);
  return hang();
};

const app = Fastify();
await app.register(mt.fastify);
const body = JSON.stringify({
  type: input.type,
  version: 1,
  timestamp: new Date().toISOString(),
  data: input.data,
});
const headers = signWebhook({ id: input.webhookId, timestamp: new Date(), body, secrets: [input.secret] });
const response = await app.inject({
  method: 'POST',
  url: EVENTS_ROUTE,
  headers: { ...headers, 'content-type': 'application/json' },
  payload: body,
});
process.stdout.write(`ANSWERED ${response.statusCode} ${response.body}\n`);
await app.close();
await mt.close();
