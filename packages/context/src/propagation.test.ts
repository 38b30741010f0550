import { describe, expect, it } from 'vitest';
import {
  CONTEXT_HEADERS,
  createContextPropagator,
  createMemoryReplayCache,
  createMessageEnvelope,
  runInMessageContext,
} from './propagation.js';
import { currentTenant, requireTenant, runWithTenant } from './tenant-context.js';

const signingKey = 'a-shared-signing-key-of-32-bytes!';

describe('header propagation', () => {
  it('round-trips the tenant, request id and user through signed headers', () => {
    const propagator = createContextPropagator({ signingKey });
    const headers = runWithTenant(
      { tenantId: 'univ_8', requestId: 'req-1', user: { id: 'u-7', roles: ['student'] } },
      () => propagator.toHeaders(),
    );
    expect(headers[CONTEXT_HEADERS.tenantId]).toBe('univ_8');
    expect(headers[CONTEXT_HEADERS.requestId]).toBe('req-1');
    const input = propagator.fromHeaders(new Headers(headers));
    expect(input).toEqual({
      tenantId: 'univ_8',
      requestId: 'req-1',
      user: { id: 'u-7', roles: ['student'] },
    });
    // Node's IncomingHttpHeaders shape works too
    expect(propagator.fromHeaders(headers)?.tenantId).toBe('univ_8');
  });

  it('reads header names case-insensitively from a plain record, so a forged X-Tenant-ID is refused', () => {
    const propagator = createContextPropagator({ signingKey });
    expect(() => propagator.fromHeaders({ 'X-Tenant-ID': 'univ_8' })).toThrowError(
      expect.objectContaining({ code: 'UNAUTHENTICATED' }),
    );
    const headers = runWithTenant({ tenantId: 'univ_8', requestId: 'req-2' }, () => propagator.toHeaders());
    const capitalised = Object.fromEntries(
      Object.entries(headers).map(([name, value]) => [
        name.replace(/(^|-)([a-z])/g, (m) => m.toUpperCase()),
        value,
      ]),
    );
    expect(propagator.fromHeaders(capitalised)).toEqual({ tenantId: 'univ_8', requestId: 'req-2' });
  });

  it('returns undefined when no tenant header is present', () => {
    expect(createContextPropagator({ signingKey }).fromHeaders({})).toBeUndefined();
  });

  it('refuses a tenant header forged from outside', () => {
    const propagator = createContextPropagator({ signingKey });
    expect(() => propagator.fromHeaders({ 'x-tenant-id': 'univ_8' })).toThrowError(
      expect.objectContaining({ code: 'UNAUTHENTICATED' }),
    );
    const genuine = runWithTenant({ tenantId: 'univ_8' }, () => propagator.toHeaders());
    // swap the tenant but keep the signature
    expect(() => propagator.fromHeaders({ ...genuine, 'x-tenant-id': 'demo_7' })).toThrowError(
      expect.objectContaining({ code: 'UNAUTHENTICATED' }),
    );
    // add roles the caller never had
    const escalated = Buffer.from(JSON.stringify({ id: 'u-7', roles: ['admin'] })).toString('base64url');
    expect(() => propagator.fromHeaders({ ...genuine, [CONTEXT_HEADERS.user]: escalated })).toThrowError(
      expect.objectContaining({ code: 'UNAUTHENTICATED' }),
    );
    // signed with another key
    const other = createContextPropagator({ signingKey: 'another-key-entirely-32-bytes!!' });
    const foreign = runWithTenant({ tenantId: 'univ_8' }, () => other.toHeaders());
    expect(() => propagator.fromHeaders(foreign)).toThrowError(
      expect.objectContaining({ code: 'UNAUTHENTICATED' }),
    );
  });

  it('accepts previous keys during rotation and refuses stale signatures', () => {
    let now = Date.parse('2026-11-22T10:00:00Z');
    const old = createContextPropagator({ signingKey: 'old-key-old-key-old-key-old-key!', now: () => now });
    const rotated = createContextPropagator({
      signingKey,
      previousKeys: ['old-key-old-key-old-key-old-key!'],
      now: () => now,
      maxAgeSeconds: 60,
    });
    const headers = runWithTenant({ tenantId: 'univ_8' }, () => old.toHeaders());
    expect(rotated.fromHeaders(headers)?.tenantId).toBe('univ_8');
    now += 61_000;
    expect(() => rotated.fromHeaders(headers)).toThrowError(
      expect.objectContaining({ code: 'UNAUTHENTICATED' }),
    );
  });

  it('validates the grammar of a signed tenant id too', () => {
    const propagator = createContextPropagator({ signingKey });
    const context = { tenantId: 'BAD ID', requestId: 'r', user: undefined, tenant: undefined } as never;
    const headers = propagator.toHeaders(context);
    expect(() => propagator.fromHeaders(headers)).toThrowError(
      expect.objectContaining({ code: 'INVALID_TENANT_ID' }),
    );
  });

  it('refuses a short signing key', () => {
    expect(() => createContextPropagator({ signingKey: 'short' })).toThrowError(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});

describe('message envelopes', () => {
  it('runs the handler in the tenant context of the envelope', async () => {
    const envelope = runWithTenant({ tenantId: 'hallym_univ', requestId: 'req-9' }, () =>
      createMessageEnvelope({ lessonId: 3 }),
    );
    expect(envelope).toMatchObject({ tenantId: 'hallym_univ', requestId: 'req-9', payload: { lessonId: 3 } });
    const seen = await runWithTenant({ tenantId: 'other_t' }, () =>
      runInMessageContext(JSON.parse(JSON.stringify(envelope)), async (payload) => ({
        tenant: currentTenant(),
        requestId: requireTenant().requestId,
        payload,
      })),
    );
    expect(seen).toEqual({ tenant: 'hallym_univ', requestId: 'req-9', payload: { lessonId: 3 } });
  });

  it('never runs the handler for a malformed tenant id', () => {
    let ran = false;
    expect(() =>
      runInMessageContext({ tenantId: '../x', requestId: 'r', sentAt: '', payload: 1 }, () => {
        ran = true;
      }),
    ).toThrowError(expect.objectContaining({ code: 'INVALID_TENANT_ID' }));
    expect(ran).toBe(false);
  });

  it('refuses roles that are not a list of strings, and a non-object envelope, as INVALID_REQUEST', () => {
    const propagator = createContextPropagator({ signingKey });
    const envelope = {
      tenantId: 'univ_8',
      requestId: 'r',
      sentAt: '',
      payload: 1,
      userId: 'u',
      roles: 'admin',
    };
    expect(() => runInMessageContext(envelope as never, () => 1)).toThrowError(
      expect.objectContaining({ code: 'INVALID_REQUEST' }),
    );
    expect(() => propagator.runInMessageContext(null as never, () => 1)).toThrowError(
      expect.objectContaining({ code: 'INVALID_REQUEST' }),
    );
    expect(() =>
      propagator.runInMessageContext({ ...envelope, signature: 'x' } as never, () => 1),
    ).toThrowError(expect.objectContaining({ code: 'UNAUTHENTICATED' }));
  });

  it('signed envelopes refuse tampering', () => {
    const propagator = createContextPropagator({ signingKey });
    const envelope = runWithTenant({ tenantId: 'univ_8' }, () => propagator.wrapMessage({ amount: 1 }));
    const roundTripped = JSON.parse(JSON.stringify(envelope));
    expect(propagator.runInMessageContext(roundTripped, () => currentTenant())).toBe('univ_8');
    expect(() =>
      propagator.runInMessageContext({ ...roundTripped, tenantId: 'demo_7' }, () => 1),
    ).toThrowError(expect.objectContaining({ code: 'UNAUTHENTICATED' }));
    expect(() =>
      propagator.runInMessageContext({ ...roundTripped, payload: { amount: 1000 } }, () => 1),
    ).toThrowError(expect.objectContaining({ code: 'UNAUTHENTICATED' }));
    // no field can spill into the next: a newline moved from the request id into the user id
    const spilled = runWithTenant({ tenantId: 'univ_8', requestId: 'req\nu-admin' }, () =>
      propagator.wrapMessage({ amount: 1 }),
    );
    expect(() =>
      propagator.runInMessageContext({ ...spilled, requestId: 'req', userId: 'u-admin' }, () => 1),
    ).toThrowError(expect.objectContaining({ code: 'UNAUTHENTICATED' }));
    const withRoles = runWithTenant(
      { tenantId: 'univ_8', user: { id: 'u-1', roles: ['student,admin'] } },
      () => propagator.wrapMessage({ amount: 1 }),
    );
    expect(() =>
      propagator.runInMessageContext({ ...withRoles, roles: ['student', 'admin'] }, () => 1),
    ).toThrowError(expect.objectContaining({ code: 'UNAUTHENTICATED' }));
    const { signature: _removed, ...unsigned } = roundTripped;
    expect(() => propagator.runInMessageContext(unsigned, () => 1)).toThrowError(
      expect.objectContaining({ code: 'UNAUTHENTICATED' }),
    );
  });
});

describe('signed envelopes: age and replay', () => {
  const key = 'envelope-signing-key-0123456789abcdef';
  const wrapAt = (sentAtMs: number, payload: unknown = { amount: 1 }) => {
    const publisher = createContextPropagator({ signingKey: key, now: () => sentAtMs });
    const envelope = runWithTenant({ tenantId: 'univ_8' }, () => publisher.wrapMessage(payload));
    return { envelope, publisher };
  };

  it('refuses an envelope older than maxMessageAgeSeconds, or stamped in the future', () => {
    const start = Date.now();
    const { envelope } = wrapAt(start);
    const consumerAt = (offsetMs: number, options: { maxMessageAgeSeconds?: number } = {}) =>
      createContextPropagator({ signingKey: key, now: () => start + offsetMs, ...options });
    expect(consumerAt(10_000).runInMessageContext(envelope, () => currentTenant())).toBe('univ_8');
    for (const [offsetMs, options] of [
      [3601_000, {}],
      [365 * 86_400_000, {}],
      [-301_000, {}],
      [61_000, { maxMessageAgeSeconds: 60 }],
    ] as const) {
      let ran = false;
      expect(() =>
        consumerAt(offsetMs, options).runInMessageContext(envelope, () => {
          ran = true;
        }),
      ).toThrowError(
        expect.objectContaining({ code: 'UNAUTHENTICATED', message: expect.stringMatching(/old/) }),
      );
      expect(ran).toBe(false);
    }
    // sentAt is signed: moving it forward breaks the signature.
    expect(() =>
      consumerAt(4000_000).runInMessageContext(
        { ...envelope, sentAt: new Date(start + 4000_000).toISOString() },
        () => 1,
      ),
    ).toThrowError(
      expect.objectContaining({ code: 'UNAUTHENTICATED', message: expect.stringMatching(/signature/) }),
    );
    for (const sentAt of ['', 'yesterday', undefined])
      expect(() => consumerAt(0).runInMessageContext({ ...envelope, sentAt } as never, () => 1)).toThrowError(
        expect.objectContaining({ code: 'UNAUTHENTICATED' }),
      );
  });

  it('runs each envelope once: a replay is CONFLICT, a new id or a re-signed id is refused or distinct', () => {
    const consumer = createContextPropagator({ signingKey: key });
    const envelope = runWithTenant({ tenantId: 'univ_8' }, () => consumer.wrapMessage({ n: 1 }));
    const runs: number[] = [];
    consumer.runInMessageContext(JSON.parse(JSON.stringify(envelope)), () => runs.push(1));
    for (let replay = 0; replay < 3; replay++) {
      expect(() =>
        consumer.runInMessageContext(JSON.parse(JSON.stringify(envelope)), () => runs.push(2)),
      ).toThrowError(expect.objectContaining({ code: 'CONFLICT' }));
    }
    // The id is signed: a replay under a fresh id is a forgery.
    expect(() =>
      consumer.runInMessageContext({ ...envelope, id: 'fresh-id' }, () => runs.push(3)),
    ).toThrowError(expect.objectContaining({ code: 'UNAUTHENTICATED' }));
    const { id: _dropped, ...withoutId } = envelope;
    expect(() => consumer.runInMessageContext(withoutId as never, () => runs.push(4))).toThrowError(
      expect.objectContaining({ code: 'UNAUTHENTICATED' }),
    );
    expect(runs).toEqual([1]);
    const second = runWithTenant({ tenantId: 'univ_8' }, () => consumer.wrapMessage({ n: 1 }));
    expect(second.id).not.toBe(envelope.id);
    expect(consumer.runInMessageContext(second, () => 'ran')).toBe('ran');
  });

  it('lets a redelivery run after the handler failed (sync throw or async rejection)', async () => {
    const consumer = createContextPropagator({ signingKey: key });
    const envelope = runWithTenant({ tenantId: 'univ_8' }, () => consumer.wrapMessage({ n: 1 }));
    expect(() =>
      consumer.runInMessageContext(envelope, () => {
        throw new Error('database down');
      }),
    ).toThrow('database down');
    await expect(
      consumer.runInMessageContext(envelope, async () => {
        throw new Error('still down');
      }),
    ).rejects.toThrow('still down');
    await expect(consumer.runInMessageContext(envelope, async () => currentTenant())).resolves.toBe('univ_8');
    expect(() => consumer.runInMessageContext(envelope, () => 1)).toThrowError(
      expect.objectContaining({ code: 'CONFLICT' }),
    );
  });

  it('the memory replay cache forgets expired ids and stays bounded', () => {
    let clock = 0;
    const cache = createMemoryReplayCache({ max: 3, now: () => clock });
    expect(cache.claim('a', 100)).toBe(true);
    expect(cache.claim('a', 100)).toBe(false);
    clock = 150;
    expect(cache.claim('a', 300)).toBe(true);
    for (const id of ['b', 'c', 'd', 'e']) expect(cache.claim(id, 1000)).toBe(true);
    expect(cache.claim('e', 1000)).toBe(false);
    expect(cache.claim('a', 1000)).toBe(true); // dropped as the oldest, over the bound
  });
});
