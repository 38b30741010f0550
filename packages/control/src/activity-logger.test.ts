import { runWithTenant } from '@mt-paas/context';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { captureLogger } from './__fixtures__/capture-logger.js';
import { type LrsStandIn, startLrsStandIn, validateStatement } from './__fixtures__/lrs-server.js';
import { ADL_VERBS, createActivityLogger } from './activity-logger.js';

const credentials = { username: 'lrs_user', password: 'lrs_secret' };

describe('createActivityLogger against a local LRS that validates every statement', () => {
  let lrs: LrsStandIn;
  beforeEach(async () => {
    lrs = await startLrsStandIn(credentials);
  });
  afterEach(async () => {
    await lrs.close();
  });

  const logger = (overrides: Partial<Parameters<typeof createActivityLogger>[0]> = {}) =>
    createActivityLogger({
      endpoint: lrs.endpoint,
      ...credentials,
      serviceUrl: 'https://tutor.example/',
      serviceId: 'keli_tutor',
      retryDelayMs: 10,
      logger: captureLogger(),
      ...overrides,
    });

  it("sends the seed's log_activity(verb='asked', object='ai_tutor', result=…) as a valid xAPI 1.0.3 statement", async () => {
    const activity = logger();
    const built = runWithTenant({ tenantId: 'hallym', user: { id: 'student_42', roles: [] } }, () =>
      activity.log({ verb: 'asked', object: 'ai_tutor', result: { message_length: 120, success: true } }),
    );
    await activity.flush();
    expect(lrs.refusals).toEqual([]);
    expect(lrs.statements).toHaveLength(1);
    const statement = lrs.statements[0]!;
    expect(statement).toEqual(built);
    expect(statement).toMatchObject({
      actor: { objectType: 'Agent', account: { homePage: 'https://tutor.example', name: 'student_42' } },
      verb: { id: 'http://adlnet.gov/expapi/verbs/asked', display: { 'en-US': 'asked' } },
      object: { objectType: 'Activity', id: 'https://tutor.example/activities/ai_tutor' },
      result: { success: true, extensions: { 'https://tutor.example/xapi/result/message_length': 120 } },
      context: {
        platform: 'keli_tutor',
        extensions: { 'https://tutor.example/xapi/extensions/tenant': 'hallym' },
      },
    });
    expect(statement.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Number.isNaN(Date.parse(String(statement.timestamp)))).toBe(false);
    expect(lrs.requests[0]?.headers['x-experience-api-version']).toBe('1.0.3');
  });

  it('builds valid statements for every ADL verb, absolute IRIs, anonymous users and every result field', async () => {
    const activity = logger({ batchSize: 10 });
    for (const verb of ADL_VERBS) {
      activity.log({ verb, object: 'course/101', tenantId: 'snu' });
    }
    activity.log({
      verb: 'https://w3id.org/xapi/dod-isd/verbs/found',
      object: 'https://tutor.example/doc/9',
    });
    activity.log({
      verb: 'scored',
      object: 'quiz_3',
      userId: 'u1',
      result: {
        score: { scaled: 0.8, raw: 8, min: 0, max: 10 },
        completion: true,
        response: 'B',
        duration: 'PT1M30S',
        tokens: 310,
      },
    });
    await activity.flush();
    expect(lrs.refusals).toEqual([]);
    expect(lrs.statements).toHaveLength(ADL_VERBS.length + 2);
    expect(new Set(lrs.statements.map((statement) => statement.id)).size).toBe(lrs.statements.length);
    expect(lrs.requests.every((request) => request.count <= 10)).toBe(true);
    expect(lrs.statements[ADL_VERBS.length]).toMatchObject({ actor: { account: { name: 'anonymous' } } });
  });

  it('the stand-in really validates: a statement broken after building is refused (400) and dropped, not retried', async () => {
    const outcomes: string[] = [];
    const activity = logger({ onOutcome: (outcome, count) => outcomes.push(`${outcome}:${count}`) });
    const statement = activity.log({ verb: 'asked', object: 'ai_tutor' })!;
    (statement.verb as { id: string }).id = 'asked'; // not an IRI
    expect(validateStatement(statement).length).toBeGreaterThan(0);
    await activity.flush();
    expect(lrs.refusals).toHaveLength(1);
    expect(lrs.refusals[0]?.status).toBe(400);
    expect(outcomes).toEqual(['dropped_rejected:1']);
  });

  it('retries 503s and then delivers; after all attempts fail it drops the batch, counts it and logs once', async () => {
    const log = captureLogger();
    const outcomes: string[] = [];
    const activity = logger({
      maxAttempts: 3,
      logger: log,
      onOutcome: (outcome, count) => outcomes.push(`${outcome}:${count}`),
    });
    lrs.failNext = 2;
    activity.log({ verb: 'completed', object: 'lesson_1' });
    await activity.flush();
    expect(lrs.statements).toHaveLength(1);
    lrs.failNext = 100;
    activity.log({ verb: 'completed', object: 'lesson_2' });
    await activity.flush();
    activity.log({ verb: 'completed', object: 'lesson_3' });
    await activity.flush();
    expect(outcomes).toEqual(['sent:1', 'dropped_failed:1', 'dropped_failed:1']);
    expect(log.at('warn')).toHaveLength(1);
    lrs.failNext = 0;
    activity.log({ verb: 'completed', object: 'lesson_4' });
    await activity.flush();
    expect(log.at('info').map((line) => line.message)).toContain('LRS reachable again');
    expect(activity.stats).toMatchObject({ sent: 2, dropped: 2, buffered: 0 });
  });

  it('a full buffer drops new statements with a counter and never blocks the caller', async () => {
    const outcomes: string[] = [];
    const activity = logger({
      maxBuffer: 5,
      batchSize: 100,
      onOutcome: (outcome, count) => outcomes.push(`${outcome}:${count}`),
    });
    const results = Array.from({ length: 8 }, (_, index) =>
      activity.log({ verb: 'asked', object: `q${index}` }),
    );
    expect(results.filter((result) => result === undefined)).toHaveLength(3);
    expect(outcomes).toEqual(Array(3).fill('dropped_buffer_full:1'));
    await activity.flush();
    expect(lrs.statements.map((statement) => (statement.object as { id: string }).id)).toEqual(
      [0, 1, 2, 3, 4].map((index) => `https://tutor.example/activities/q${index}`),
    );
  });

  it('sends on its timer once started, and stop() delivers what is buffered', async () => {
    const activity = logger({ flushIntervalMs: 50 });
    activity.start();
    activity.log({ verb: 'launched', object: 'ai_tutor' });
    await expect.poll(() => lrs.statements.length, { timeout: 2_000 }).toBe(1);
    activity.log({ verb: 'terminated', object: 'ai_tutor' });
    await activity.stop();
    expect(lrs.statements).toHaveLength(2);
  });

  it('refuses unknown verbs and objects that are not names or IRIs with INVALID_REQUEST', () => {
    const activity = logger();
    for (const verb of ['', 'Asked', 'hacked', 'voided', 'asked ', 'javascript:alert(1)']) {
      expect(() => activity.log({ verb, object: 'ai_tutor' })).toThrow(
        expect.objectContaining({ code: 'INVALID_REQUEST' }),
      );
    }
    for (const object of ['', 'a b', '../../etc', 'a/../../admin', 'a//b', '<script>', 'x'.repeat(300)]) {
      expect(() => activity.log({ verb: 'asked', object })).toThrow(
        expect.objectContaining({ code: 'INVALID_REQUEST' }),
      );
    }
    expect(() => activity.log({ verb: 'asked', object: 'a', result: { 'bad key': 1 } })).toThrow(
      expect.objectContaining({ code: 'INVALID_REQUEST' }),
    );
    for (const result of [
      { success: 'yes' },
      { completion: 1 },
      { duration: '90 seconds' },
      { duration: 'P' },
      { score: { scaled: 2 } },
      { score: { raw: 11, min: 0, max: 10 } },
      { score: { min: 5, max: 5 } },
      { score: { points: 3 } },
      { response: 42 },
    ]) {
      expect(() => activity.log({ verb: 'scored', object: 'quiz', result })).toThrow(
        expect.objectContaining({ code: 'INVALID_REQUEST' }),
      );
    }
    expect(activity.stats.buffered).toBe(0);
  });

  it('is off when no endpoint is configured: nothing is built, buffered or sent', async () => {
    const activity = createActivityLogger({ serviceUrl: 'https://tutor.example', serviceId: 'svc' });
    expect(activity.enabled).toBe(false);
    expect(activity.log({ verb: 'asked', object: 'ai_tutor' })).toBeUndefined();
    activity.start();
    await activity.stop();
    expect(lrs.requests).toEqual([]);
  });
});
