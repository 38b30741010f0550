import {
  adminQuery,
  createTestDatabase,
  describeWith,
  type TenantDatabases,
  type TestDatabase,
  tenantDatabases,
  testRedis,
} from '@mt-paas/test-env';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatAndLeave, FIRST_TOKEN, stallModel } from './__fixtures__/stalling-model.js';
import { TEST_ENV, tutorClient } from './__fixtures__/tutor-client.js';
import { type RunningTutor, startTutor } from './server.js';

/**
 * The tutor on real Postgres + Redis in row, schema and database mode: the marketplace creates two
 * tenants; course → document → chat cites the document; the second tenant never sees the first's data,
 * and a second instance (sharing Postgres and Redis) serves the same tenants. In each mode the attacker's
 * cases that depend on where the rows live: one tenant's ids used under the other, and a client leaving
 * mid-stream (no session of the app role is left inside a transaction).
 */
const MODES = ['row', 'schema', 'database'] as const;
const APP_ROLE = 'mtp_tutor_app';

describeWith(['postgres', 'redis'], 'reference tutor on Postgres + Redis', () => {
  describe.each(MODES)('%s mode', (mode) => {
    let database: TestDatabase;
    let tenants: TenantDatabases;
    const tutors: RunningTutor[] = [];

    beforeAll(async () => {
      database = await createTestDatabase({ label: `tutor_${mode}` });
      const redis = testRedis({ label: `tutor_${mode}` });
      tenants = tenantDatabases(database.url, `tut_${mode.slice(0, 3)}`);
      const env = {
        ...TEST_ENV,
        DATABASE_URL: database.url,
        REDIS_URL: redis.url,
        REDIS_KEY_PREFIX: redis.prefix,
        ISOLATION_MODE: mode,
        TENANT_DATABASE_URL_TEMPLATE: tenants.urlTemplate,
      };
      for (let index = 0; index < 2; index++) {
        tutors.push(await startTutor({ port: 0, env, startTimers: false, appRole: APP_ROLE }));
      }
    });

    afterAll(async () => {
      for (const tutor of tutors) await tutor.close();
      if (database === undefined) return;
      await tenants?.drop();
      await database.drop();
    });

    it('course → document → chat cites the document; the other tenant sees none of it', async () => {
      const a = tutorClient(tutors[0]!.url);
      const b = tutorClient(tutors[1]!.url);
      await a.createTenant('hallym', '한림대학교', 'admin@hallym.ac.kr', 'professional');
      await a.createTenant('gwangju', 'Gwangju University', 'admin@gwangju.ac.kr', 'professional');
      expect((await tutors[0]!.mt.catalog.directory.get('hallym' as never))?.placement.mode).toBe(mode);

      const hallym = (await a.adminSession('hallym', 'admin@hallym.ac.kr')).token;
      const gwangju = (await b.adminSession('gwangju', 'admin@gwangju.ac.kr')).token;
      const course = await a.call('POST', '/api/courses', {
        tenant: 'hallym',
        token: hallym,
        body: { title: 'Campus life' },
      });
      expect(course.status).toBe(201);
      const upload = await a.call('POST', `/api/courses/${course.body.id}/documents`, {
        tenant: 'hallym',
        token: hallym,
        body: {
          title: 'Library guide',
          content: 'The Hallym library opens at 9 am. The reading room is open all night.',
        },
      });
      expect(upload.status).toBe(201);

      const answer = await a.chat('hallym', hallym, {
        question: 'When does the library open?',
        courseId: course.body.id,
      });
      expect(answer.done.answer).toContain('9 am');
      expect(answer.done.sources[0]).toMatchObject({
        documentId: upload.body.id,
        title: 'Library guide',
        chunk: 0,
      });

      // the second instance serves the same tenant from the same storage; its (in-memory) vector store
      // is rebuilt from the stored chunks, so it cites the same document
      const fromB = await b.chat('hallym', hallym, { question: 'When does the library open?' });
      expect(fromB.done.sources[0]).toMatchObject({ documentId: upload.body.id, chunk: 0 });
      expect(
        (await b.call('GET', '/api/courses', { tenant: 'hallym', token: hallym })).body.map(
          (c: { id: string }) => c.id,
        ),
      ).toEqual([course.body.id]);

      // the other tenant: no courses, no documents, no answer from hallym's document, its own users only
      expect((await b.call('GET', '/api/courses', { tenant: 'gwangju', token: gwangju })).body).toEqual([]);
      expect(
        (
          await b.call('GET', `/api/courses/${course.body.id}/documents`, {
            tenant: 'gwangju',
            token: gwangju,
          })
        ).status,
      ).toBe(404);
      const other = await b.chat('gwangju', gwangju, { question: 'When does the library open?' });
      expect(other.done.sources).toEqual([]);
      expect(other.done.answer).not.toContain('9 am');
      expect(
        (await b.call('GET', '/api/users', { tenant: 'gwangju', token: gwangju })).body.users.map(
          (u: { email: string }) => u.email,
        ),
      ).toEqual(['admin@gwangju.ac.kr']);
      expect(
        (await b.call('GET', '/api/courses', { tenant: 'gwangju', token: hallym })).body.error.code,
      ).toBe('CROSS_TENANT_ACCESS');
    });

    /** Sessions of the app role on this mode's databases that are inside a transaction or running a query. */
    async function busyAppSessions() {
      return adminQuery<{ state: string; query: string }>(
        database.url,
        `SELECT state, query FROM pg_stat_activity
          WHERE usename = $1 AND (datname = $2 OR starts_with(datname, $3)) AND state <> 'idle'`,
        [APP_ROLE, database.name, tenants.prefix],
      );
    }

    it("answers 404 for one tenant's course and document ids used under the other, and changes nothing", async () => {
      const a = tutorClient(tutors[0]!.url);
      const hallym = (await a.adminSession('hallym', 'admin@hallym.ac.kr')).token;
      const gwangju = (await a.adminSession('gwangju', 'admin@gwangju.ac.kr')).token;
      const course = await a.call('POST', '/api/courses', {
        tenant: 'hallym',
        token: hallym,
        body: { title: 'Vault course' },
      });
      const document = await a.call('POST', `/api/courses/${course.body.id}/documents`, {
        tenant: 'hallym',
        token: hallym,
        body: {
          title: 'Vault',
          content: 'The vault code is 4711. The vault opens at noon. Exams are kept there.',
        },
      });
      expect(document.status).toBe(201);
      const asB = { tenant: 'gwangju', token: gwangju };
      const id = course.body.id;
      const attempts = [
        await a.call('GET', `/api/courses/${id}`, asB),
        await a.call('PATCH', `/api/courses/${id}`, { ...asB, body: { title: 'owned' } }),
        await a.call('GET', `/api/courses/${id}/documents`, asB),
        await a.call('POST', `/api/courses/${id}/documents`, {
          ...asB,
          body: { title: 'x', content: 'planted' },
        }),
        await a.call('POST', `/api/courses/${id}/quiz`, { ...asB, body: { count: 1 } }),
        await a.call('DELETE', `/api/courses/${id}/documents/${document.body.id}`, asB),
        await a.call('DELETE', `/api/courses/${id}`, asB),
      ];
      for (const answer of attempts) {
        expect(answer.status, JSON.stringify(answer.body)).toBe(404);
        expect(JSON.stringify(answer.body)).not.toMatch(/4711|Vault/);
      }
      const chat = await a.chat('gwangju', gwangju, { question: 'What is the vault code?', courseId: id });
      expect(chat.status).toBe(404);
      const same = await a.call('GET', `/api/courses/${id}/documents`, { tenant: 'hallym', token: hallym });
      expect(same.body.map((row: { id: string }) => row.id)).toEqual([document.body.id]);
      expect(
        (await a.call('GET', `/api/courses/${id}`, { tenant: 'hallym', token: hallym })).body.title,
      ).toBe('Vault course');
    });

    it('cancels the LLM call of a client that leaves mid-stream and leaves no session in a transaction', async () => {
      const tutor = tutors[0]!;
      const client = tutorClient(tutor.url);
      const hallym = (await client.adminSession('hallym', 'admin@hallym.ac.kr')).token;
      const before = await client.call('GET', '/api/chat/history', { tenant: 'hallym', token: hallym });
      const model = stallModel(tutor.mt);
      try {
        const chat = await chatAndLeave(tutor.url, 'hallym', hallym, 'Tell me about the vault.');
        expect(chat.status).toBe(200);
        expect(chat.received).toContain(FIRST_TOKEN);
        // while the answer streams, no unit of work is open: the stream holds no connection
        expect(await busyAppSessions()).toEqual([]);
        chat.leave();
        await expect.poll(() => model.signals[0]?.aborted).toBe(true);
      } finally {
        model.restore();
      }
      await expect.poll(busyAppSessions).toEqual([]);
      const after = await client.call('GET', '/api/chat/history', { tenant: 'hallym', token: hallym });
      expect(after.body).toHaveLength(before.body.length);
      // and the tenant is served as before, from both instances
      for (const running of tutors) {
        const next = await tutorClient(running.url).chat('hallym', hallym, {
          question: 'When does the library open?',
        });
        expect(next.status).toBe(200);
        expect(next.done.answer).toContain('9 am');
      }
    });
  });
});
