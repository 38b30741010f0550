import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ENV, tutorClient } from './__fixtures__/tutor-client.js';
import { type RunningTutor, startTutor } from './server.js';

/**
 * The tutor in-process on embedded PGlite (row mode, RLS), driven over HTTP: the marketplace creates two
 * tenants, each admin logs in, creates a course, uploads a document and asks a question whose answer
 * cites it — and neither tenant ever sees the other's data.
 */
describe('reference tutor on embedded defaults', () => {
  let tutor: RunningTutor;
  let client: ReturnType<typeof tutorClient>;
  const sessions: Record<string, string> = {};
  const courseIds: Record<string, string> = {};

  beforeAll(async () => {
    tutor = await startTutor({ port: 0, env: { ...TEST_ENV, TUTOR_DATA_DIR: 'memory' }, startTimers: false });
    client = tutorClient(tutor.url);
    await client.createTenant('hallym', '한림대학교', 'admin@hallym.ac.kr');
    await client.createTenant('gwangju', 'Gwangju University', 'admin@gwangju.ac.kr');
    sessions.hallym = (await client.adminSession('hallym', 'admin@hallym.ac.kr')).token;
    sessions.gwangju = (await client.adminSession('gwangju', 'admin@gwangju.ac.kr')).token;
  }, 60_000);

  afterAll(async () => {
    await tutor?.close();
  });

  it('answers health with and without a tenant, and docs, metrics and the page', async () => {
    expect((await client.call('GET', '/api/health')).body).toMatchObject({
      status: 'healthy',
      service: 'keli_tutor',
      isolation: 'row',
    });
    expect((await client.call('GET', '/api/health', { tenant: 'hallym' })).body.tenant_id).toBe('hallym');
    expect((await client.call('GET', '/api/health', { tenant: 'nobody_here' })).body.error.code).toBe(
      'TENANT_NOT_FOUND',
    );
    const docs = await client.call('GET', '/docs/json');
    expect(docs.status).toBe(200);
    expect(Object.keys(docs.body.paths)).toEqual(
      expect.arrayContaining([
        '/api/chat',
        '/api/courses/{id}/documents',
        '/api/auth/login',
        '/api/superadmin/usage',
      ]),
    );
    expect((await client.call('GET', '/metrics')).body).toContain('mtpaas_http_requests_total');
    const page = await client.call('GET', '/?tenant=hallym');
    expect(page.headers.get('content-type')).toContain('text/html');
  });

  it('seeds the admin from the market, refuses wrong passwords, and gives a token with the tenant claim', async () => {
    const users = await client.call('GET', '/api/users', { tenant: 'hallym', token: sessions.hallym });
    expect(users.body).toMatchObject({
      tenant_id: 'hallym',
      count: 1,
      users: [{ email: 'admin@hallym.ac.kr', role: 'admin', hasPassword: true }],
    });
    const wrong = await client.call('POST', '/api/auth/login', {
      tenant: 'hallym',
      body: { email: 'admin@hallym.ac.kr', password: 'not the password' },
    });
    expect(wrong.status).toBe(401);
    const unknown = await client.call('POST', '/api/auth/login', {
      tenant: 'hallym',
      body: { email: 'nobody@hallym.ac.kr', password: 'whatever it is' },
    });
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.message).toBe(wrong.body.error.message);
    const login = await client.call('POST', '/api/auth/login', {
      tenant: 'hallym',
      body: { email: 'ADMIN@hallym.ac.kr', password: 'a long test password' },
    });
    expect(login.status).toBe(200);
    const claims = JSON.parse(Buffer.from(login.body.token.split('.')[1], 'base64url').toString());
    expect(claims).toMatchObject({ tenant_id: 'hallym', roles: ['admin'], sub: login.body.user.id });
  });

  it('uses a password link once', async () => {
    const link = await client.call('POST', '/api/superadmin/tenants/hallym/password-reset', {
      headers: { 'x-api-key': TEST_ENV.SUPERADMIN_API_KEY },
      body: { email: 'admin@hallym.ac.kr' },
    });
    const first = await client.call('POST', '/api/auth/password', {
      tenant: 'hallym',
      body: { resetToken: link.body.resetToken, password: 'another long password' },
    });
    expect(first.status).toBe(200);
    const again = await client.call('POST', '/api/auth/password', {
      tenant: 'hallym',
      body: { resetToken: link.body.resetToken, password: 'a third long password' },
    });
    expect(again.status).toBe(401);
    // the link of one tenant is nothing in another
    const other = await client.call('POST', '/api/superadmin/tenants/hallym/password-reset', {
      headers: { 'x-api-key': TEST_ENV.SUPERADMIN_API_KEY },
      body: { email: 'admin@hallym.ac.kr' },
    });
    const crossed = await client.call('POST', '/api/auth/password', {
      tenant: 'gwangju',
      body: { resetToken: other.body.resetToken, password: 'cross tenant password' },
    });
    expect(crossed.status).toBe(401);
    // restore the password the other tests use
    await client.call('POST', '/api/auth/password', {
      tenant: 'hallym',
      body: { resetToken: other.body.resetToken, password: 'a long test password' },
    });
  });

  it('creates a course, uploads a document and answers from it with the source cited (SSE)', async () => {
    for (const [tenant, text] of [
      [
        'hallym',
        '# Library\n\nThe Hallym library opens at 9 am and closes at 10 pm. The reading room never closes.',
      ],
      [
        'gwangju',
        '# Cafeteria\n\nThe Gwangju cafeteria serves bibimbap every Tuesday. Breakfast starts at 7 am.',
      ],
    ] as const) {
      const course = await client.call('POST', '/api/courses', {
        tenant,
        token: sessions[tenant],
        body: { title: `${tenant} orientation` },
      });
      expect(course.status).toBe(201);
      courseIds[tenant] = course.body.id;
      const upload = await client.call('POST', `/api/courses/${course.body.id}/documents?title=Guide`, {
        tenant,
        token: sessions[tenant],
        body: text,
        headers: { 'content-type': 'text/markdown' },
      });
      expect(upload.status).toBe(201);
      expect(upload.body).toMatchObject({ title: 'Guide', contentType: 'text/markdown', chunkCount: 1 });
    }
    const answer = await client.chat('hallym', sessions.hallym!, { question: 'When does the library open?' });
    expect(answer.status).toBe(200);
    expect(answer.contentType).toContain('text/event-stream');
    expect(answer.events.filter((event) => event.event === 'token').length).toBeGreaterThan(0);
    expect(answer.done.answer).toContain('9 am');
    expect(answer.done.sources[0]).toMatchObject({ title: 'Guide', chunk: 0 });
    const documents = await client.call('GET', `/api/courses/${courseIds.hallym}/documents`, {
      tenant: 'hallym',
      token: sessions.hallym,
    });
    expect(answer.done.sources[0].documentId).toBe(documents.body[0].id);
    const tokens = answer.events
      .filter((event) => event.event === 'token')
      .map((event) => event.data.text)
      .join('');
    expect(tokens).toBe(answer.done.answer);
  });

  it('never shows one tenant the other tenant’s courses, documents, answers or users', async () => {
    const courses = await client.call('GET', '/api/courses', { tenant: 'gwangju', token: sessions.gwangju });
    expect(courses.body.map((course: { id: string }) => course.id)).toEqual([courseIds.gwangju]);
    expect(
      (
        await client.call('GET', `/api/courses/${courseIds.hallym}`, {
          tenant: 'gwangju',
          token: sessions.gwangju,
        })
      ).status,
    ).toBe(404);
    expect(
      (
        await client.call('GET', `/api/courses/${courseIds.hallym}/documents`, {
          tenant: 'gwangju',
          token: sessions.gwangju,
        })
      ).status,
    ).toBe(404);
    expect(
      (
        await client.call('DELETE', `/api/courses/${courseIds.hallym}`, {
          tenant: 'gwangju',
          token: sessions.gwangju,
        })
      ).status,
    ).toBe(404);
    const answer = await client.chat('gwangju', sessions.gwangju!, {
      question: 'When does the library open?',
    });
    expect(JSON.stringify(answer.done)).not.toContain('Hallym');
    for (const source of answer.done.sources) expect(source.title).toBe('Guide');
    expect(
      answer.done.sources.every((source: { documentId: string }) => source.documentId !== undefined),
    ).toBe(true);
    const users = await client.call('GET', '/api/users', { tenant: 'gwangju', token: sessions.gwangju });
    expect(users.body.users.map((user: { email: string }) => user.email)).toEqual(['admin@gwangju.ac.kr']);
  });

  it('refuses a token of one tenant in another, and requests without a token', async () => {
    const crossed = await client.call('GET', '/api/courses', { tenant: 'gwangju', token: sessions.hallym });
    expect(crossed.status).toBe(403);
    expect(crossed.body.error.code).toBe('CROSS_TENANT_ACCESS');
    expect((await client.call('GET', '/api/courses', { tenant: 'hallym' })).status).toBe(401);
    expect((await client.call('GET', '/api/users', { tenant: 'hallym' })).status).toBe(401);
    // the token alone names its tenant (jwt_claim)
    const byClaim = await client.call('GET', '/api/courses', { token: sessions.hallym });
    expect(byClaim.body.map((course: { id: string }) => course.id)).toEqual([courseIds.hallym]);
  });

  it('validates bodies with a message naming the field', async () => {
    const bad = await client.call('POST', '/api/courses', {
      tenant: 'hallym',
      token: sessions.hallym,
      body: { title: '' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'INVALID_REQUEST' });
    expect(bad.body.error.message).toContain('title');
    const empty = await client.call('POST', `/api/courses/${courseIds.hallym}/documents`, {
      tenant: 'hallym',
      token: sessions.hallym,
      body: { title: 'x', content: '   ' },
    });
    expect(empty.status).toBe(400);
  });

  it('gates the quiz on the plan and generates one after an upgrade', async () => {
    const refused = await client.call('POST', `/api/courses/${courseIds.hallym}/quiz`, {
      tenant: 'hallym',
      token: sessions.hallym,
      body: {},
    });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('FEATURE_NOT_IN_PLAN');
    await client.setPlan('hallym', 'professional', {
      ai_chat: true,
      file_upload: true,
      rag: true,
      quiz: true,
    });
    // the plan change reaches the cached tenant through the event bus
    await expect
      .poll(async () => (await client.call('GET', '/api/tenant', { tenant: 'hallym' })).body.features.quiz, {
        timeout: 10_000,
      })
      .toBe(true);
    const quiz = await client.call('POST', `/api/courses/${courseIds.hallym}/quiz`, {
      tenant: 'hallym',
      token: sessions.hallym,
      body: { count: 2 },
    });
    expect(quiz.status).toBe(201);
    expect(quiz.body.questions.length).toBeGreaterThan(0);
    for (const question of quiz.body.questions) expect(question.source.title).toBe('Guide');
    // the other tenant's plan did not change
    const other = await client.call('POST', `/api/courses/${courseIds.gwangju}/quiz`, {
      tenant: 'gwangju',
      token: sessions.gwangju,
      body: {},
    });
    expect(other.body.error.code).toBe('FEATURE_NOT_IN_PLAN');
  });

  it('lets an admin of a plan with custom_branding set the page’s colour, logo and welcome', async () => {
    const set = await client.call('PATCH', '/api/tenant/branding', {
      tenant: 'hallym',
      token: sessions.hallym,
      body: { primary_color: '#123abc', welcome: '한림대 튜터에 오신 것을 환영합니다' },
    });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ primaryColor: '#123abc', logoUrl: null });
    await expect
      .poll(
        async () =>
          (await client.call('GET', '/api/tenant', { tenant: 'hallym' })).body.branding.primaryColor,
      )
      .toBe('#123abc');
    const script = await client.call('PATCH', '/api/tenant/branding', {
      tenant: 'hallym',
      token: sessions.hallym,
      body: { logo_url: 'javascript:alert(1)' },
    });
    expect(script.status).toBe(400);
    const free = await client.call('PATCH', '/api/tenant/branding', {
      tenant: 'gwangju',
      token: sessions.gwangju,
      body: { primary_color: '#000000' },
    });
    expect(free.body.error.code).toBe('FEATURE_NOT_IN_PLAN');
  });

  it('lets the marketplace key and the superadmin key list a tenant’s users (seed 002 §7.1.3 + a key)', async () => {
    for (const key of [TEST_ENV.MARKET_API_KEY, TEST_ENV.SUPERADMIN_API_KEY]) {
      const users = await client.call('GET', '/api/users', {
        tenant: 'gwangju',
        headers: { 'x-api-key': key },
      });
      expect(users.status).toBe(200);
      expect(users.body.users.map((user: { email: string }) => user.email)).toEqual(['admin@gwangju.ac.kr']);
    }
    expect(
      (await client.call('GET', '/api/users', { tenant: 'gwangju', headers: { 'x-api-key': 'not a key' } }))
        .status,
    ).toBe(401);
  });

  it('meters the chat’s tokens on the llm_tokens quota and refuses the chat once it is used up', async () => {
    const quota = { limit: 1000, period: 'monthly' as const, enforcement: 'block' as const };
    await client.setPlan(
      'gwangju',
      'free',
      { ai_chat: true, file_upload: true },
      { quotas: { llm_tokens: quota } },
    );
    await expect
      .poll(
        async () =>
          (await tutor.mt.pipeline.directory.get('gwangju' as never))?.entitlements.limits.quotas.llm_tokens
            ?.limit,
      )
      .toBe(1000);
    const meter = tutor.mt.pipeline.quotas!;
    const before = await meter.usage('gwangju' as never, 'llm_tokens', 'monthly');
    const answer = await client.chat('gwangju', sessions.gwangju!, {
      question: 'What does the cafeteria serve on Tuesday?',
    });
    const after = await meter.usage('gwangju' as never, 'llm_tokens', 'monthly');
    // the answer's tokens (and the question's embedding) were counted
    expect(after - before).toBeGreaterThanOrEqual(answer.done.usage.totalTokens);
    // use the rest of the quota up: the next question is refused before any stream starts
    await meter.consume('gwangju' as never, 'llm_tokens', quota, quota.limit - after);
    const refused = await client.chat('gwangju', sessions.gwangju!, { question: 'And on Wednesday?' });
    expect(refused.status).toBe(429);
    expect(refused.contentType).toContain('application/json');
    expect(refused.error.error.code).toBe('QUOTA_EXCEEDED');
    // the other tenant still chats
    expect(
      (await client.chat('hallym', sessions.hallym!, { question: 'When does the library open?' })).status,
    ).toBe(200);
  });

  it('drops a purged tenant’s vectors with its storage', async () => {
    await client.createTenant('leaving_u', 'Leaving University', 'admin@leaving.ac.kr');
    const token = (await client.adminSession('leaving_u', 'admin@leaving.ac.kr')).token;
    const course = await client.call('POST', '/api/courses', {
      tenant: 'leaving_u',
      token,
      body: { title: 'Last course' },
    });
    await client.call('POST', `/api/courses/${course.body.id}/documents`, {
      tenant: 'leaving_u',
      token,
      body: { title: 'Notes', content: 'Farewell notes for everyone.' },
    });
    const { vectorStore } = await tutor.mt.providersFor('leaving_u');
    expect(await vectorStore.count()).toBe(1);
    await tutor.mt.provisioner.offboard('leaving_u');
    await tutor.mt.provisioner.purge('leaving_u', { force: true });
    expect(await vectorStore.count()).toBe(0);
    // the other tenants' vectors are untouched
    expect(await (await tutor.mt.providersFor('hallym')).vectorStore.count()).toBeGreaterThan(0);
  });

  it('keeps the superadmin routes behind the superadmin key', async () => {
    expect((await client.call('GET', '/api/superadmin/tenants')).status).toBe(401);
    expect(
      (await client.call('GET', '/api/superadmin/tenants', { headers: { 'x-api-key': 'wrong' } })).status,
    ).toBe(401);
    expect(
      (
        await client.call('GET', '/api/superadmin/tenants', {
          headers: { 'x-api-key': TEST_ENV.MARKET_API_KEY },
        })
      ).status,
    ).toBe(401);
    const tenants = await client.call('GET', '/api/superadmin/tenants', {
      headers: { 'x-api-key': TEST_ENV.SUPERADMIN_API_KEY },
    });
    const statuses = Object.fromEntries(
      tenants.body.tenants.map((tenant: { id: string; status: string }) => [tenant.id, tenant.status]),
    );
    expect(statuses).toEqual({ gwangju: 'active', hallym: 'active', leaving_u: 'purged' });
    const usage = await client.call('GET', '/api/superadmin/usage?tenant_id=hallym', {
      headers: { 'x-api-key': TEST_ENV.SUPERADMIN_API_KEY },
    });
    expect(usage.body.usage.user_count).toBe(1);
    expect(usage.body.usage.chat_count).toBeGreaterThanOrEqual(1);
    const history = await client.call('GET', '/api/superadmin/history', {
      headers: { 'x-api-key': TEST_ENV.SUPERADMIN_API_KEY },
    });
    expect(history.status).toBe(200);
    expect(history.body.events.some((event: { type: string }) => event.type.includes('cross_tenant'))).toBe(
      true,
    );
  });
});
