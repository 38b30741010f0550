import {
  createTestDatabase,
  describeWith,
  type TestDatabase,
  testBackend,
  testRedis,
} from '@mt-paas/test-env';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ENV, tutorClient } from './__fixtures__/tutor-client.js';
import { type RunningTutor, startTutor } from './server.js';

/**
 * The tutor on real Postgres + Redis in row, schema and database mode: the marketplace creates two
 * tenants; course → document → chat cites the document; the second tenant never sees the first's data,
 * and a second instance (sharing Postgres and Redis) serves the same tenants.
 */
const MODES = ['row', 'schema', 'database'] as const;

async function adminQuery<R extends pg.QueryResultRow>(url: string, text: string, params?: unknown[]) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(text, params)).rows;
  } finally {
    await client.end();
  }
}

describeWith(['postgres', 'redis'], 'reference tutor on Postgres + Redis', () => {
  describe.each(MODES)('%s mode', (mode) => {
    let database: TestDatabase;
    let prefix: string;
    const tutors: RunningTutor[] = [];

    beforeAll(async () => {
      database = await createTestDatabase({ label: `tutor_${mode}` });
      const redis = testRedis({ label: `tutor_${mode}` });
      prefix = `mtp_t_${testBackend().runId}_tut${mode[0]}_`;
      const template = new URL(database.url);
      template.pathname = `/${prefix}{tenant_id}`;
      const env = {
        ...TEST_ENV,
        DATABASE_URL: database.url,
        REDIS_URL: redis.url,
        REDIS_KEY_PREFIX: redis.prefix,
        ISOLATION_MODE: mode,
        TENANT_DATABASE_URL_TEMPLATE: template.toString().replace('%7Btenant_id%7D', '{tenant_id}'),
      };
      for (let index = 0; index < 2; index++) {
        tutors.push(await startTutor({ port: 0, env, startTimers: false, appRole: 'mtp_tutor_app' }));
      }
    });

    afterAll(async () => {
      for (const tutor of tutors) await tutor.close();
      if (database === undefined) return;
      const left = await adminQuery<{ name: string }>(
        database.url,
        'SELECT datname AS name FROM pg_database WHERE starts_with(datname, $1) AND datname <> current_database()',
        [prefix],
      );
      for (const { name } of left)
        await adminQuery(database.url, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await database.drop();
    });

    it('course → document → chat cites the document; the other tenant sees none of it', async () => {
      const a = tutorClient(tutors[0]!.url);
      const b = tutorClient(tutors[1]!.url);
      await a.createTenant('hallym', '한림대학교', 'admin@hallym.ac.kr');
      await a.createTenant('gwangju', 'Gwangju University', 'admin@gwangju.ac.kr');
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
  });
});
