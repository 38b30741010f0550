import { sendRawLines } from '@mt-paas/test-env/http-client';
import { createParser } from 'eventsource-parser';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatAndLeave, FIRST_TOKEN, stallModel } from './__fixtures__/stalling-model.js';
import { MARKET_API_KEY, SUPERADMIN_API_KEY, TEST_ENV, tutorClient } from './__fixtures__/tutor-client.js';
import { type RunningTutor, startTutor } from './server.js';

/**
 * The tutor as an attacker sees it, on embedded PGlite: one institution's token, ids and links used
 * against another; forged and claim-less tokens; the operator key guessed or smuggled; hostile uploads
 * and questions; a client that leaves in the middle of a streamed answer.
 */
describe('reference tutor under attack', () => {
  let tutor: RunningTutor;
  let client: ReturnType<typeof tutorClient>;
  let hallym: string; // A
  let gwangju: string; // B
  let courseA: string;
  let documentA: string;

  beforeAll(async () => {
    tutor = await startTutor({ port: 0, env: { ...TEST_ENV, TUTOR_DATA_DIR: 'memory' }, startTimers: false });
    client = tutorClient(tutor.url);
    await client.createTenant('hallym', '한림대학교', 'admin@hallym.ac.kr', 'professional');
    await client.createTenant('gwangju', 'Gwangju University', 'admin@gwangju.ac.kr', 'professional');
    hallym = (await client.adminSession('hallym', 'admin@hallym.ac.kr')).token;
    gwangju = (await client.adminSession('gwangju', 'admin@gwangju.ac.kr')).token;
    const course = await client.call('POST', '/api/courses', {
      tenant: 'hallym',
      token: hallym,
      body: { title: 'Secret course of Hallym' },
    });
    courseA = course.body.id;
    const upload = await client.call('POST', `/api/courses/${courseA}/documents`, {
      tenant: 'hallym',
      token: hallym,
      body: {
        title: 'Hallym secrets',
        content:
          'The Hallym vault code is 4711. The vault opens at noon. The archive keeps the exam answers.',
      },
    });
    expect(upload.status).toBe(201);
    documentA = upload.body.id;
  }, 60_000);

  afterAll(async () => {
    await tutor?.close();
  });

  /** A's course and document are untouched and still A's. */
  async function aIntact() {
    const course = await client.call('GET', `/api/courses/${courseA}`, { tenant: 'hallym', token: hallym });
    expect(course.status).toBe(200);
    expect(course.body.title).toBe('Secret course of Hallym');
    const documents = await client.call('GET', `/api/courses/${courseA}/documents`, {
      tenant: 'hallym',
      token: hallym,
    });
    expect(documents.body.map((document: { id: string }) => document.id)).toEqual([documentA]);
  }

  it("never serves B's data to A's token, whether B is named by header, ?tenant= or subdomain", async () => {
    const lake = await client.call('POST', '/api/courses', {
      tenant: 'gwangju',
      token: gwangju,
      body: { title: 'Gwangju lake course' },
    });
    expect(lake.status).toBe(201);
    const port = new URL(tutor.url).port;
    // the header outranks the token's claim: a mismatch is refused
    const header = await client.call('GET', '/api/courses', { tenant: 'gwangju', token: hallym });
    expect(header.status).toBe(403);
    expect(header.body.error.code).toBe('CROSS_TENANT_ACCESS');
    // every source must agree: B named by ?tenant= or B's subdomain beside A's token is refused too,
    // B's data never comes back and nothing is written into B
    const weaker = [
      await client.call('GET', '/api/courses?tenant=gwangju', { token: hallym }),
      await client.call('GET', '/api/courses', {
        token: hallym,
        headers: { host: `gwangju.localhost:${port}` },
      }),
      await client.call('GET', '/api/courses?tenant=gwangju', {
        token: hallym,
        headers: { host: `gwangju.localhost:${port}` },
      }),
      await client.call('GET', '/api/users?tenant=gwangju', { token: hallym }),
      await client.call('POST', '/api/courses?tenant=gwangju', { token: hallym, body: { title: 'planted' } }),
      await client.call('POST', '/api/courses', {
        token: hallym,
        headers: { host: `gwangju.localhost:${port}` },
        body: { title: 'planted' },
      }),
    ];
    for (const answer of weaker) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(403);
      expect(answer.body.error.code).toBe('CROSS_TENANT_ACCESS');
      expect(JSON.stringify(answer.body)).not.toMatch(/Gwangju|gwangju\.ac\.kr/);
    }
    const chat = await client.chat('gwangju', hallym, { question: 'What is the vault code?' });
    expect(chat.status).toBe(403);
    expect(chat.contentType).toContain('application/json');
    // nothing was planted in B
    const bCourses = await client.call('GET', '/api/courses', { tenant: 'gwangju', token: gwangju });
    expect(bCourses.body.map((course: { title: string }) => course.title)).toEqual(['Gwangju lake course']);
  });

  it("answers 404 — never A's data — for A's course and document ids used under B", async () => {
    const asB = { tenant: 'gwangju', token: gwangju };
    const attempts = [
      await client.call('GET', `/api/courses/${courseA}`, asB),
      await client.call('PATCH', `/api/courses/${courseA}`, { ...asB, body: { title: 'owned by B' } }),
      await client.call('GET', `/api/courses/${courseA}/documents`, asB),
      await client.call('POST', `/api/courses/${courseA}/documents`, {
        ...asB,
        body: { title: 'planted', content: 'B writes into A.' },
      }),
      await client.call('POST', `/api/courses/${courseA}/documents?title=planted`, {
        ...asB,
        body: 'B writes into A.',
        headers: { 'content-type': 'text/plain' },
      }),
      await client.call('POST', `/api/courses/${courseA}/quiz`, { ...asB, body: { count: 2 } }),
      await client.call('DELETE', `/api/courses/${courseA}/documents/${documentA}`, asB),
      await client.call('DELETE', `/api/courses/${courseA}`, asB),
    ];
    for (const answer of attempts) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(404);
      expect(JSON.stringify(answer.body)).not.toMatch(/Hallym|4711|vault/);
    }
    const chat = await client.chat('gwangju', gwangju, {
      question: 'What is the vault code?',
      courseId: courseA,
    });
    expect(chat.status).toBe(404);
    expect(JSON.stringify(chat.error)).not.toMatch(/4711|vault/i);
    // without a course id, B's retrieval does not reach A's documents either
    const open = await client.chat('gwangju', gwangju, { question: 'What is the vault code?' });
    expect(open.done.sources).toEqual([]);
    expect(open.done.answer).not.toContain('4711');
    // a B document id under A's course id, from A: 404 too (the pair must match)
    const courseB = await client.call('POST', '/api/courses', { ...asB, body: { title: 'B course' } });
    const documentB = await client.call('POST', `/api/courses/${courseB.body.id}/documents`, {
      ...asB,
      body: { title: 'B notes', content: 'Gwangju notes about the lake. The lake is cold.' },
    });
    expect(
      (
        await client.call('DELETE', `/api/courses/${courseA}/documents/${documentB.body.id}`, {
          tenant: 'hallym',
          token: hallym,
        })
      ).status,
    ).toBe(404);
    await aIntact();
  });

  it('refuses a token without the tenant claim, a forged one, and one of a deleted user', async () => {
    const secret = new TextEncoder().encode(TEST_ENV.JWT_SECRET);
    const me = await client.call('GET', '/api/auth/me', { tenant: 'hallym', token: hallym });
    const sign = (claims: Record<string, unknown>, key = secret) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(key);
    const noClaim = await sign({ sub: me.body.id, email: 'admin@hallym.ac.kr', roles: ['admin'] });
    for (const attempt of [
      await client.call('GET', '/api/courses', { tenant: 'hallym', token: noClaim }),
      await client.call('GET', '/api/courses?tenant=hallym', { token: noClaim }),
      await client.call('GET', '/api/courses', { token: noClaim }),
    ]) {
      // 400 TENANT_NOT_IDENTIFIED without any tenant, else 401/403: never the tenant's data
      expect([400, 401, 403], JSON.stringify(attempt.body)).toContain(attempt.status);
      expect(JSON.stringify(attempt.body)).not.toContain('Secret course');
    }
    const forged = await sign(
      { sub: me.body.id, tenant_id: 'hallym', roles: ['admin'] },
      new TextEncoder().encode('not_the_secret_but_32_characters_long'),
    );
    expect((await client.call('GET', '/api/courses', { tenant: 'hallym', token: forged })).status).toBe(401);
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${hallym.split('.')[1]}.`;
    expect((await client.call('GET', '/api/courses', { tenant: 'hallym', token: unsigned })).status).toBe(
      401,
    );
    // a validly signed token of a user that does not exist in the tenant
    const ghost = await sign({ sub: crypto.randomUUID(), tenant_id: 'hallym', roles: ['admin'] });
    expect((await client.call('GET', '/api/auth/me', { tenant: 'hallym', token: ghost })).status).toBe(401);
  });

  it('keeps the superadmin routes behind the exact key: wrong case, inner whitespace, repeated header, wrong header', async () => {
    const path = '/api/superadmin/tenants';
    const ok = await sendRawLines(tutor.url, path, [`X-API-Key: ${SUPERADMIN_API_KEY}`]);
    expect(ok.status).toBe(200);
    // the header's name is case-insensitive in HTTP; its value is not
    expect((await sendRawLines(tutor.url, path, [`x-api-KEY: ${SUPERADMIN_API_KEY}`])).status).toBe(200);
    const refused = [
      await sendRawLines(tutor.url, path, []),
      await sendRawLines(tutor.url, path, [`X-API-Key: ${SUPERADMIN_API_KEY.toUpperCase()}`]),
      await sendRawLines(tutor.url, path, [`X-API-Key: ${SUPERADMIN_API_KEY.slice(0, -1)}`]),
      await sendRawLines(tutor.url, path, [`X-API-Key: ${SUPERADMIN_API_KEY} x`]),
      await sendRawLines(tutor.url, path, [`X-API-Key: ${SUPERADMIN_API_KEY}\t${SUPERADMIN_API_KEY}`]),
      await sendRawLines(tutor.url, path, [
        'X-API-Key: wrong_key_wrong_key_wrong',
        `X-API-Key: ${SUPERADMIN_API_KEY}`,
      ]),
      await sendRawLines(tutor.url, path, [
        `X-API-Key: ${SUPERADMIN_API_KEY}`,
        'X-API-Key: wrong_key_wrong_key_wrong',
      ]),
      await sendRawLines(tutor.url, path, [
        `X-API-Key: ${SUPERADMIN_API_KEY}`,
        `X-API-Key: ${SUPERADMIN_API_KEY}`,
      ]),
      await sendRawLines(tutor.url, path, [`X-API_Key: ${SUPERADMIN_API_KEY}`]),
      await sendRawLines(tutor.url, path, [`Authorization: Bearer ${SUPERADMIN_API_KEY}`]),
      await sendRawLines(tutor.url, path, [`X-API-Key: ${MARKET_API_KEY}`]),
      await sendRawLines(tutor.url, path, [`Authorization: Bearer ${hallym}`, 'X-Tenant-ID: hallym']),
      await sendRawLines(tutor.url, `${path}?tenant=hallym`, [`Authorization: Bearer ${hallym}`]),
    ];
    for (const [index, answer] of refused.entries()) {
      // 400 for a repeated header (INVALID_REQUEST), 401 / 403 otherwise
      expect([400, 401, 403], `attempt ${index}: ${answer.status} ${answer.text}`).toContain(answer.status);
      expect(answer.text).toContain('"error"');
      expect(answer.text).not.toContain('gwangju');
    }
    // the password link, the most dangerous superadmin route, likewise
    const link = await client.call('POST', '/api/superadmin/tenants/hallym/password-reset', {
      token: hallym,
      tenant: 'hallym',
      body: { email: 'admin@hallym.ac.kr' },
    });
    expect([401, 403]).toContain(link.status);
    expect(link.body.resetToken).toBeUndefined();
  });

  it('refuses hostile uploads: over the limit, wrong type, empty, blank, NUL bytes', async () => {
    const asA = { tenant: 'hallym', token: hallym };
    const path = `/api/courses/${courseA}/documents`;
    const tooBig = 'a'.repeat(2 * 1024 * 1024 + 1);
    const overJson = await client.call('POST', path, { ...asA, body: { title: 'big', content: tooBig } });
    expect(overJson.status).toBe(413);
    expect(overJson.body.error.code).toBeTypeOf('string');
    const overText = await client.call('POST', `${path}?title=big`, {
      ...asA,
      body: tooBig,
      headers: { 'content-type': 'text/plain' },
    });
    expect(overText.status).toBe(413);
    const overMarkdown = await client.call('POST', `${path}?title=big`, {
      ...asA,
      body: tooBig,
      headers: { 'content-type': 'text/markdown' },
    });
    expect(overMarkdown.status).toBe(413);
    for (const type of [
      'application/pdf',
      'application/octet-stream',
      'image/png',
      'multipart/form-data; boundary=x',
    ]) {
      const wrong = await client.call('POST', `${path}?title=x`, {
        ...asA,
        body: '%PDF-1.7 not text',
        headers: { 'content-type': type },
      });
      expect(wrong.status, `${type}: ${JSON.stringify(wrong.body)}`).toBe(415);
      expect(wrong.body.error.code).toBeTypeOf('string');
    }
    const emptyJson = await client.call('POST', path, {
      ...asA,
      body: '',
      headers: { 'content-type': 'application/json' },
    });
    expect(emptyJson.status).toBe(400);
    expect(emptyJson.body.error.code).toBeTypeOf('string');
    for (const body of [
      { title: 'empty', content: '' },
      { title: 'blank', content: ' \n\t ' },
      { title: '', content: 'text' },
      { title: 'nul', content: 'zero\u0000byte' },
      { title: 'nul\u0000title', content: 'text' },
    ]) {
      const answer = await client.call('POST', path, { ...asA, body });
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.error.code).toBe('INVALID_REQUEST');
    }
    for (const body of ['', '   \n  ', 'raw\u0000nul']) {
      const answer = await client.call('POST', `${path}?title=raw`, {
        ...asA,
        body,
        headers: { 'content-type': 'text/plain' },
      });
      expect(answer.status, JSON.stringify(body)).toBe(400);
    }
    await aIntact();
  });

  it('refuses empty, blank, huge and NUL questions as JSON before any stream', async () => {
    for (const question of ['', '   \n', 'q'.repeat(4001), 'what\u0000is this']) {
      const answer = await client.chat('hallym', hallym, { question });
      expect(answer.status, JSON.stringify(question.slice(0, 20))).toBe(400);
      expect(answer.contentType).toContain('application/json');
      expect(answer.error.error.code).toBe('INVALID_REQUEST');
    }
    const notJson = await client.call('POST', '/api/chat', {
      tenant: 'hallym',
      token: hallym,
      body: 'x'.repeat(2 * 1024 * 1024),
      headers: { 'content-type': 'application/json' },
    });
    expect(notJson.status).toBe(413);
    const badCourse = await client.chat('hallym', hallym, { question: 'hi', courseId: 'not-a-uuid' });
    expect(badCourse.status).toBe(400);
  });

  it('sends the pipeline’s headers with the stream, and streams whatever the client accepts', async () => {
    for (const accept of [undefined, 'application/json', 'text/event-stream', '*/*']) {
      const response = await fetch(`${tutor.url}/api/chat`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-tenant-id': 'hallym',
          authorization: `Bearer ${hallym}`,
          ...(accept === undefined ? {} : { accept }),
        },
        body: JSON.stringify({ question: 'When does the vault open?' }),
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(response.headers.get('cache-control')).toContain('no-cache');
      // the pipeline's headers, set on the reply before the stream: rate limit (IETF draft) and request id
      expect(Number(response.headers.get('ratelimit-limit'))).toBeGreaterThan(0);
      expect(response.headers.get('ratelimit-remaining')).toMatch(/^\d+$/);
      expect(response.headers.get('x-request-id')).toBeTruthy();
      const events: string[] = [];
      const parser = createParser({ onEvent: (event) => events.push(event.event ?? 'message') });
      parser.feed(await response.text());
      expect(events.at(-1)).toBe('done');
      expect(events.slice(0, -1).every((name) => name === 'token')).toBe(true);
    }
  });

  it('aborts the LLM call when the client leaves mid-stream, stores nothing and keeps the tenant serviceable', async () => {
    const model = stallModel(tutor.mt);
    try {
      const before = await client.call('GET', '/api/chat/history', { tenant: 'hallym', token: hallym });
      const chat = await chatAndLeave(tutor.url, 'hallym', hallym, 'Tell me everything about the vault.');
      expect(chat.status).toBe(200);
      expect(chat.received).toContain(FIRST_TOKEN);
      expect(model.signals[0]?.aborted).toBe(false);
      chat.leave();
      await expect.poll(() => model.signals[0]?.aborted).toBe(true);
      model.restore();
      // the tenant's storage is free (PGlite has one connection: a unit of work left open would block these)
      const after = await client.call('GET', '/api/chat/history', { tenant: 'hallym', token: hallym });
      expect(after.body).toHaveLength(before.body.length);
      const next = await client.chat('hallym', hallym, { question: 'When does the vault open?' });
      expect(next.done.answer).toContain('noon');
    } finally {
      model.restore();
    }
  });
});
