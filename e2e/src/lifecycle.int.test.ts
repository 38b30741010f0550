import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAppRole, describeWith, type TestRedis, testRedis, useTestDatabase } from '@mt-paas/test-env';
import { call, type RunningProcess } from '@mt-paas/test-env/processes';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type MarketDriver, marketDriver, type OnboardedTenant } from './market.js';
import {
  newServiceSecrets,
  REPO_ROOT,
  registerTutor,
  startMarketSim,
  startTutor,
  TUTOR_DIR,
  tutorEnv,
} from './stack.js';
import { adminLogin } from './tutor-admin.js';
import { type TutorClient, tutorClient } from './tutor-client.js';

/**
 * Issue 14 §4: the market simulator and two reference-tutor instances as real processes over HTTP, on
 * real Postgres and Redis, through a tenant's whole life — once per isolation mode. A second tenant lives
 * beside it the whole time; after every step its data is checked to be invisible to the first tenant and
 * its own service to be unaffected.
 */
const OVERLAY = fileURLToPath(new URL('./__fixtures__/mt-paas.e2e.yaml', import.meta.url));
const MODES = ['row', 'schema', 'database'] as const;
const PROVISIONING_CLI = `${REPO_ROOT}packages/provisioning/dist/cli.js`;
const TUTOR_MIGRATIONS = `${REPO_ROOT}apps/reference-tutor/drizzle`;
/** A step polls for up to 30 s at a time; a loaded CI machine gets room (the int projects' default is 60 s). */
const STEP_TIMEOUT = 150_000;

interface Member {
  onboarded: OnboardedTenant;
  /** One client per tutor instance, logged in as the tenant's admin. */
  clients: [TutorClient, TutorClient];
  courseId?: string;
  documentTitle: string;
  /** A fact only this tenant's document states. */
  fact: string;
  question: string;
}

for (const mode of MODES) {
  describeWith(['postgres', 'redis'], `lifecycle end to end — ${mode} mode (market-sim + 2 tutors)`, () => {
    const database = useTestDatabase({ label: `e2e_${mode}` });
    const secrets = newServiceSecrets('keli_tutor');
    const suffix = randomBytes(3).toString('hex');
    let market: RunningProcess | undefined;
    const tutors: RunningProcess[] = [];
    let sim: MarketDriver;
    let admin: pg.Client;
    let appUrl = '';
    const members: Record<'a' | 'b', Member> = {} as never;
    // the tutor's own config with the suite's overlay beside it (MT_PAAS_ENV=e2e)
    const configDir = mkdtempSync(join(tmpdir(), 'mtpaas-e2e-'));
    const config = join(configDir, 'mt-paas.yaml');
    copyFileSync(join(TUTOR_DIR, 'mt-paas.yaml'), config);
    copyFileSync(OVERLAY, join(configDir, 'mt-paas.e2e.yaml'));
    const configEnv = { MT_PAAS_CONFIG: config, MT_PAAS_ENV: 'e2e', ISOLATION_MODE: mode };
    // this file's own Redis key prefix (both tutors share it), flushed at the end
    let redis: TestRedis | undefined;

    beforeAll(async () => {
      redis = testRedis({ label: mode });
      market = await startMarketSim({
        DATABASE_URL: database.url,
        MARKET_SIM_RETRY_SCHEDULE: '0.2,0.5,1,2,5',
        MARKET_SIM_POLL_MS: '100',
        MARKET_SIM_HEARTBEAT_INTERVAL_SECONDS: '1',
        MARKET_SIM_MISSED_BEATS: '60',
      });
      sim = marketDriver(market.url);
      // the NOSUPERUSER NOBYPASSRLS role the tutors (and the operator's CLI) run tenant units as
      const app = await createAppRole(database.url);
      appUrl = app.url;
      const env = tutorEnv(market, secrets, {
        APP_DATABASE_URL: app.url,
        DATABASE_URL: database.url,
        REDIS_URL: redis.url,
        REDIS_KEY_PREFIX: redis.prefix,
        HEARTBEAT_INTERVAL_SECONDS: '1',
        TUTOR_DATA_DIR: 'memory',
        ...configEnv,
      });
      // the first instance migrates; the second starts on a migrated database
      tutors.push(await startTutor(env, { name: `tutor-1 (${mode})` }));
      tutors.push(await startTutor(env, { name: `tutor-2 (${mode})` }));
      await registerTutor(sim, tutors[0]!.url, secrets);
      admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
    }, 240_000);

    afterAll(async () => {
      await Promise.all(tutors.map((tutor) => tutor.stop()));
      await market?.stop();
      if (mode === 'database' && admin !== undefined) {
        // the tenant databases live beside the test database: drop what the purge did not
        for (const member of Object.values(members)) {
          await admin
            .query(`DROP DATABASE IF EXISTS "t_${member.onboarded.tenantId}" WITH (FORCE)`)
            .catch(() => {});
        }
      }
      await admin?.end();
      await redis?.flush();
      rmSync(configDir, { recursive: true, force: true });
    });

    /** The tenant's state at the market, the service's report included. */
    const marketTenant = (member: Member) => sim.tenant(secrets.serviceId, member.onboarded.tenantId);
    /** What an admin of `member` sees on instance `index`. */
    const status = async (member: Member, index: 0 | 1, path = '/api/courses') =>
      (await members[member === members.a ? 'a' : 'b'].clients[index].request('GET', path)).status;

    /**
     * Waits until A's rate limit admits requests again (the burst and quota steps drain it: 120 rpm), so
     * that the next step's refusals are its own.
     */
    async function settleRateLimit() {
      for (let attempt = 0; attempt < 30; attempt++) {
        const response = await members.a.clients[0].request('GET', '/api/courses');
        if (response.status !== 429 || response.body?.error?.code !== 'RATE_LIMITED') return;
        await new Promise((resolve) =>
          setTimeout(resolve, Number(response.headers.get('retry-after')) * 1000),
        );
      }
    }

    /** B is untouched: its courses are its own, and A's admin cannot see or reach any of them. */
    async function expectBIsolated(options: { aActive: boolean }) {
      const { a, b } = members;
      if (options.aActive) await settleRateLimit();
      for (const index of [0, 1] as const) {
        const bCourses = await b.clients[index].ok('GET', '/api/courses');
        expect(JSON.stringify(bCourses)).toContain(b.documentTitle.replace('.md', ''));
        expect(JSON.stringify(bCourses)).not.toContain(a.fact);
        if (options.aActive) {
          const aCourses = JSON.stringify(await a.clients[index].ok('GET', '/api/courses'));
          expect(aCourses).not.toContain(b.onboarded.tenantId);
          if (b.courseId !== undefined) expect(aCourses).not.toContain(b.courseId);
        }
        // A's token presented for B's tenant is refused, whatever A's state
        const crossed = await fetch(`${b.clients[index].baseUrl}/api/courses`, {
          headers: {
            'x-tenant-id': b.onboarded.tenantId,
            authorization: `Bearer ${a.clients[index].token}`,
          },
        });
        expect(crossed.status).toBe(403);
        expect((await crossed.json()).error.code).toBe('CROSS_TENANT_ACCESS');
      }
    }

    it(
      'register → apply → approve: tenants created with storage and an admin',
      async () => {
        for (const [key, name] of [
          ['a', 'hallym'],
          ['b', 'korea'],
        ] as const) {
          const tenantId = `${name}_${suffix}`;
          const onboarded = await sim.onboard({
            serviceId: secrets.serviceId,
            tenantId,
            institutionName: `${name} University`,
            email: `admin@${name}-${suffix}.ac.kr`,
            memberName: `${name} admin`,
            plan: 'professional',
          });
          const fact =
            key === 'a'
              ? `The library of ${name} opens at 07:15 and its reading room code is AURORA${suffix}.`
              : `The mascot of ${name} is a tiger called HORANG${suffix} who lives by the east gate.`;
          members[key] = {
            onboarded,
            clients: [tutorClient(tutors[0]!.url, tenantId), tutorClient(tutors[1]!.url, tenantId)],
            documentTitle: `${name}-handbook.md`,
            fact,
            question:
              key === 'a' ? 'What is the reading room code of the library?' : 'What is the mascot called?',
          };
        }
        for (const member of Object.values(members)) {
          // the market marks the application completed once the tutor has answered the provision request
          await expect
            .poll(async () => (await sim.application(member.onboarded.applicationId)).status, {
              timeout: 30_000,
            })
            .toBe('completed');
          expect(await marketTenant(member)).toMatchObject({ status: 'active', plan: 'professional' });
          // the tutor reported the onboarding (through its outbox)
          await expect
            .poll(async () => (await marketTenant(member)).reportedStatus, { timeout: 20_000 })
            .toBe('active');
          const tenantId = member.onboarded.tenantId;
          // storage exists in the mode's own way
          const catalogRow = await admin.query('SELECT status FROM mt_paas.tenants WHERE id = $1', [
            tenantId,
          ]);
          expect(catalogRow.rows).toEqual([{ status: 'active' }]);
          if (mode === 'schema') {
            const found = await admin.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [
              `t_${tenantId}`,
            ]);
            expect(found.rowCount).toBe(1);
          } else if (mode === 'database') {
            const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [
              `t_${tenantId}`,
            ]);
            expect(found.rowCount).toBe(1);
          }
          // the admin exists: the market's member logs in (SSO) on both instances and is listed
          for (const client of member.clients) {
            await adminLogin(sim, client, {
              serviceId: secrets.serviceId,
              userId: member.onboarded.userId,
              email: member.onboarded.email,
            });
            expect(JSON.stringify(await client.ok('GET', '/api/users'))).toContain(member.onboarded.email);
          }
        }
      },
      STEP_TIMEOUT,
    );

    it(
      'a course, a document and a question whose answer cites the document — per tenant',
      async () => {
        for (const member of Object.values(members)) {
          const [client] = member.clients;
          const course = await client.createCourse({
            title: `${member.documentTitle.replace('.md', '')} course`,
            description: 'orientation',
          });
          member.courseId = course.id;
          await client.uploadDocument(course.id, {
            title: member.documentTitle,
            content: `# Orientation\n\n${member.fact}\n\nThe rest of this handbook is about timetables.`,
          });
        }
        const { a, b } = members;
        const answer = await a.clients[1].chat(a.question, a.courseId);
        expect(answer.status).toBe(200);
        expect(answer.tokens.length).toBeGreaterThan(0);
        expect(answer.final?.answer).toContain(`AURORA${suffix}`);
        expect(JSON.stringify(answer.final?.sources)).toContain(a.documentTitle);
        // B's document is never a source of A's answers, even asked about directly
        const probe = await a.clients[0].chat(b.question);
        expect(JSON.stringify(probe.final)).not.toContain(`HORANG${suffix}`);
        expect(JSON.stringify(probe.final?.sources ?? [])).not.toContain(b.documentTitle);
        const own = await b.clients[0].chat(b.question, b.courseId);
        expect(own.final?.answer).toContain(`HORANG${suffix}`);
        // quiz is in the professional plan
        expect((await a.clients[0].quiz(a.courseId!)).status).toBe(201);
        await expectBIsolated({ aActive: true });
      },
      STEP_TIMEOUT,
    );

    it(
      'usage arrives at the market',
      async () => {
        await expect
          .poll(
            async () =>
              (await sim.usage(secrets.serviceId, members.a.onboarded.tenantId)).map((t) => t.meter),
            {
              timeout: 45_000,
              interval: 500,
            },
          )
          .toContain('llm_tokens');
        const totals = await sim.usage(secrets.serviceId, members.a.onboarded.tenantId);
        expect(totals.every((total) => total.tenantId === members.a.onboarded.tenantId)).toBe(true);
        expect(totals.find((total) => total.meter === 'llm_tokens')!.quantity).toBeGreaterThan(0);
      },
      STEP_TIMEOUT,
    );

    it(
      'rate limit: a burst gets 429 with Retry-After; the other tenant is not slowed',
      async () => {
        const { a, b } = members;
        // 100 requests on each instance at once: each alone stays under the plan's 120 rpm, so any 429
        // proves that the two count against one limit (Redis)
        const burst = await Promise.all(
          Array.from({ length: 200 }, (_, index) =>
            a.clients[(index % 2) as 0 | 1].request('GET', '/api/courses'),
          ),
        );
        const statuses = burst.map((response, index) => `${index % 2}:${response.status}`);
        const limited = burst.filter((response) => response.status === 429);
        expect(limited.length, `statuses (instance:status): ${statuses.join(' ')}`).toBeGreaterThan(0);
        expect(limited[0]!.body.error.code).toBe('RATE_LIMITED');
        const retryAfter = Number(limited[0]!.headers.get('retry-after'));
        expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
        expect(await status(b, 0)).toBe(200);
        await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
        expect(await status(a, 1)).toBe(200);
      },
      STEP_TIMEOUT,
    );

    it(
      'quota: 80 % audited, the refusal at 100 % alerted to the market and the question refused',
      async () => {
        const { a, b } = members;
        let refused: Awaited<ReturnType<TutorClient['chat']>> | undefined;
        for (let round = 0; round < 60 && refused === undefined; round++) {
          const answer = await a.clients[(round % 2) as 0 | 1].chat(a.question, a.courseId);
          if (answer.status === 429 && answer.error?.error?.code === 'RATE_LIMITED') {
            // still paying for the burst of the step before: wait as told
            await new Promise((resolve) =>
              setTimeout(resolve, Number(answer.headers.get('retry-after')) * 1000),
            );
          } else if (answer.status === 429 || answer.error !== undefined) refused = answer;
          else expect(answer.status).toBe(200);
        }
        // the 80 % threshold is in the tenant's audit history (the operator's view) …
        await expect
          .poll(
            async () =>
              (
                await call(
                  `${tutors[0]!.url}/api/superadmin/history?tenant_id=${a.onboarded.tenantId}&limit=500`,
                  {
                    headers: { 'x-api-key': secrets.superadminKey },
                  },
                )
              ).events.filter(
                (event: { type: string; details: { meter?: string; percent?: number } | null }) =>
                  event.type === 'quota_threshold' && event.details?.meter === 'llm_tokens',
              ),
            { timeout: 30_000, interval: 500 },
          )
          .toContainEqual(expect.objectContaining({ details: expect.objectContaining({ percent: 80 }) }));
        // … and the refusal reached the market as an audit alert
        await expect
          .poll(
            async () =>
              (await sim.auditAlerts()).alerts.filter(
                (alert) =>
                  JSON.stringify(alert).includes(a.onboarded.tenantId) &&
                  /quota/i.test(JSON.stringify(alert)),
              ),
            { timeout: 30_000, interval: 500 },
          )
          .not.toEqual([]);
        // refused before the stream starts (429), or — when the quota runs out while answering — by the
        // stream's error event
        expect([429, 200]).toContain(refused?.status);
        expect(refused?.error?.error?.code).toBe('QUOTA_EXCEEDED');
        // B's quota is its own
        expect((await b.clients[1].chat(b.question, b.courseId)).status).toBe(200);
        await expectBIsolated({ aActive: true });
      },
      STEP_TIMEOUT,
    );

    it(
      'kill switch: blocked on both instances within 1 s, with the message; unblock',
      async () => {
        const { a, b } = members;
        await settleRateLimit();
        const message = `Pay the invoice ${suffix}.`;
        const blocked = await sim.block(secrets.serviceId, a.onboarded.tenantId, {
          reason: 'payment_overdue',
          message,
        });
        // from the moment the service answered the market's delivery, both instances refuse within a second
        await expect
          .poll(async () => (await sim.delivery(blocked.delivery_id)).status, {
            timeout: 20_000,
            interval: 50,
          })
          .toBe('delivered');
        await expect
          .poll(
            async () =>
              Promise.all(
                a.clients.map(async (client) => {
                  const response = await client.request('GET', '/api/courses');
                  return [response.status, response.body?.error?.code, response.body?.error?.message];
                }),
              ),
            { timeout: 1_000, interval: 50 },
          )
          .toEqual([
            [403, 'TENANT_BLOCKED', expect.stringContaining(message)],
            [403, 'TENANT_BLOCKED', expect.stringContaining(message)],
          ]);
        expect(await status(b, 0)).toBe(200);
        expect(await status(b, 1)).toBe(200);
        await expect
          .poll(() => marketTenant(a), { timeout: 20_000 })
          .toMatchObject({ reportedStatus: 'blocked' });

        await settleRateLimit();
        await sim.unblock(secrets.serviceId, a.onboarded.tenantId);
        await expect
          .poll(async () => [await status(a, 0), await status(a, 1)], { timeout: 20_000, interval: 1_000 })
          .toEqual([200, 200]);
        await expect
          .poll(async () => (await marketTenant(a)).reportedStatus, { timeout: 20_000 })
          .toBe('active');
        await expectBIsolated({ aActive: true });
      },
      STEP_TIMEOUT,
    );

    it(
      'downgrade removes quiz: 403 FEATURE_NOT_IN_PLAN',
      async () => {
        const { a, b } = members;
        await settleRateLimit();
        await sim.changePlan(secrets.serviceId, a.onboarded.tenantId, 'starter');
        await expect
          .poll(
            async () => {
              const responses = await Promise.all(a.clients.map((client) => client.quiz(a.courseId!)));
              return responses.map((response) => [response.status, response.body?.error?.code]);
            },
            { timeout: 20_000, interval: 500 },
          )
          .toEqual([
            [403, 'FEATURE_NOT_IN_PLAN'],
            [403, 'FEATURE_NOT_IN_PLAN'],
          ]);
        expect((await b.clients[0].quiz(b.courseId!)).status).toBe(201);
      },
      STEP_TIMEOUT,
    );

    it(
      'service cancelled → suspended; user deleted → deleted; purge',
      async () => {
        const { a, b } = members;
        await sim.cancel(a.onboarded.applicationId);
        await expect
          .poll(async () => (await a.clients[1].request('GET', '/api/courses')).body?.error?.code, {
            timeout: 20_000,
          })
          .toBe('TENANT_SUSPENDED');
        await expect
          .poll(async () => (await marketTenant(a)).reportedStatus, { timeout: 20_000 })
          .toBe('suspended');
        expect(await status(b, 1)).toBe(200);

        const deleted = await sim.deleteUser(a.onboarded.userId);
        expect(deleted.deliveries).toHaveLength(1);
        await expect
          .poll(async () => (await a.clients[0].request('GET', '/api/courses')).body?.error?.code, {
            timeout: 20_000,
          })
          .toBe('TENANT_DELETED');
        await expect
          .poll(async () => (await sim.findTenant(secrets.serviceId, a.onboarded.tenantId))?.reportedStatus, {
            timeout: 20_000,
          })
          .toBe('deleted');
        // B was never reported as anything but active
        expect((await marketTenant(b)).reportedStatus).toBe('active');
        await expect
          .poll(async () => (await sim.delivery(deleted.deliveries[0]!)).status, { timeout: 20_000 })
          .toBe('delivered');
        expect((await sim.delivery(deleted.deliveries[0]!)).response).toMatchObject({
          deleted_tenants: [a.onboarded.tenantId],
        });
        await expectBIsolated({ aActive: false });

        // purge: the operator's CLI drops the deleted tenant's storage
        const purge = await runCli(['tenant', 'purge', a.onboarded.tenantId, '--force', '--json']);
        expect(purge.code, purge.output).toBe(0);
        const row = await admin.query('SELECT status FROM mt_paas.tenants WHERE id = $1', [
          a.onboarded.tenantId,
        ]);
        expect(row.rows).toEqual([{ status: 'purged' }]);
        if (mode === 'schema') {
          expect(
            (
              await admin.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [
                `t_${a.onboarded.tenantId}`,
              ])
            ).rowCount,
          ).toBe(0);
        } else if (mode === 'database') {
          expect(
            (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [`t_${a.onboarded.tenantId}`]))
              .rowCount,
          ).toBe(0);
        } else {
          const left = await admin.query('SELECT count(*)::int AS n FROM courses WHERE tenant_id = $1', [
            a.onboarded.tenantId,
          ]);
          expect(left.rows).toEqual([{ n: 0 }]);
        }
        // B lives on, on both instances, with its document
        for (const index of [0, 1] as const) {
          const answer = await b.clients[index].chat(b.question, b.courseId);
          expect(answer.final?.answer).toContain(`HORANG${suffix}`);
        }
        const { tenants } = await call(`${tutors[0]!.url}/api/superadmin/tenants`, {
          headers: { 'x-api-key': secrets.superadminKey },
        });
        expect(JSON.stringify(tenants)).toContain(b.onboarded.tenantId);
      },
      STEP_TIMEOUT,
    );

    /** The operator's `mt-paas` CLI (@mt-paas/provisioning) on the tutor's config and database. */
    function runCli(args: string[]): Promise<{ code: number | null; output: string }> {
      const cli = [PROVISIONING_CLI, '--config', config, '--env', 'e2e', '--migrations', TUTOR_MIGRATIONS];
      return new Promise((resolve) => {
        const child = spawn(process.execPath, [...cli, ...args], {
          env: {
            PATH: process.env.PATH ?? '',
            DATABASE_URL: database.url,
            JWT_SECRET: secrets.jwtSecret,
            MT_PAAS_APP_DATABASE_URL: appUrl,
            ...configEnv,
          },
          cwd: REPO_ROOT,
        });
        let output = '';
        const collect = (chunk: Buffer) => {
          output += chunk.toString();
        };
        child.stdout.on('data', collect);
        child.stderr.on('data', collect);
        child.once('exit', (code) => resolve({ code, output }));
      });
    }
  });
}
