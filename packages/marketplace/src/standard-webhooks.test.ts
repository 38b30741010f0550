import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import {
  decodeWebhookSecret,
  generateWebhookSecret,
  signWebhook,
  verifyWebhook,
} from './standard-webhooks.js';

const BODIES = [
  '{"type":"tenant.blocked","version":1,"timestamp":"2026-01-03T12:00:00Z","data":{"tenant_id":"hallym"}}',
  '{ "message": "구독이 만료되었습니다. 갱신해주세요.", "emoji": "🎓" }',
  '',
  ' \n\t{"a":1}\r\n',
];

describe('Standard Webhooks interoperability with the standardwebhooks package', () => {
  it.each(BODIES)('verifies what the standardwebhooks package signs (body %#)', (body) => {
    const secret = generateWebhookSecret();
    const at = new Date();
    const id = 'msg_2LJm1ZbvHN3gAhqZ6ZtX5hYx';
    const signature = new Webhook(secret).sign(id, at, body);
    const verified = verifyWebhook({
      headers: {
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': signature,
      },
      body,
      secrets: [secret],
    });
    expect(verified.id).toBe(id);
    expect(verified.timestamp.getTime()).toBe(Math.floor(at.getTime() / 1000) * 1000);
  });

  it.each(BODIES)('signs what the standardwebhooks package verifies (body %#)', (body) => {
    const secret = generateWebhookSecret();
    const headers = signWebhook({ id: 'msg_1', timestamp: new Date(), body, secrets: [secret] });
    expect(() => new Webhook(secret).verify(body, { ...headers })).not.toThrow();
  });

  it('signs with every rotation secret; the peer holding either one verifies', () => {
    const [oldSecret, newSecret] = [generateWebhookSecret(), generateWebhookSecret()];
    const body = '{"a":1}';
    const headers = signWebhook({
      id: 'msg_rot',
      timestamp: new Date(),
      body,
      secrets: [newSecret, oldSecret],
    });
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(() => new Webhook(oldSecret).verify(body, { ...headers })).not.toThrow();
    expect(() => new Webhook(newSecret).verify(body, { ...headers })).not.toThrow();
    expect(() => new Webhook(generateWebhookSecret()).verify(body, { ...headers })).toThrow(
      WebhookVerificationError,
    );
  });

  it('signs over the exact bytes: the peer refuses a body differing by one byte', () => {
    const secret = generateWebhookSecret();
    const headers = signWebhook({ id: 'msg_b', timestamp: new Date(), body: '{"a":1}', secrets: [secret] });
    expect(() => new Webhook(secret).verify('{"a":1} ', { ...headers })).toThrow(WebhookVerificationError);
  });

  it('matches the Standard Webhooks specification example', () => {
    // From the spec's reference test vectors (standard-webhooks/standard-webhooks, libraries/javascript).
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const headers = signWebhook({
      id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      timestamp: new Date(1614265330 * 1000),
      body: '{"test": 2432232314}',
      secrets: [secret],
    });
    expect(headers['webhook-signature']).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });
});

describe('verifyWebhook refusals', () => {
  const secret = generateWebhookSecret();
  const body = '{"type":"x"}';
  const now = new Date('2026-06-01T00:00:00Z');
  const signed = (at: Date, id = 'msg_1') => ({
    ...signWebhook({ id, timestamp: at, body, secrets: [secret] }),
  });
  const reason = (run: () => unknown) => {
    try {
      run();
    } catch (error) {
      return (error as { code: string; details: { reason: string } }).details.reason;
    }
    return 'accepted';
  };

  it.each([
    [-301, 'stale_timestamp'],
    [-300, 'accepted'],
    [0, 'accepted'],
    [300, 'accepted'],
    [301, 'future_timestamp'],
  ])('a timestamp %i s from now → %s (tolerance 300 s both ways)', (offset, expected) => {
    const headers = signed(new Date(now.getTime() + offset * 1000));
    expect(reason(() => verifyWebhook({ headers, body, secrets: [secret], now: () => now }))).toBe(expected);
  });

  it('honours a configured tolerance', () => {
    const headers = signed(new Date(now.getTime() - 60_000));
    expect(
      reason(() => verifyWebhook({ headers, body, secrets: [secret], now: () => now, toleranceSeconds: 30 })),
    ).toBe('stale_timestamp');
  });

  it.each([
    ['missing id', (h: Record<string, string>) => ({ ...h, 'webhook-id': undefined }), 'missing_headers'],
    [
      'missing signature',
      (h: Record<string, string>) => ({ ...h, 'webhook-signature': undefined }),
      'missing_headers',
    ],
    [
      'two signature headers',
      (h: Record<string, string>) => ({ ...h, 'webhook-signature': [h['webhook-signature'], 'v1,x'] }),
      'missing_headers',
    ],
    ['an id with a space', (h: Record<string, string>) => ({ ...h, 'webhook-id': 'msg 1' }), 'bad_id'],
    [
      'a timestamp in milliseconds',
      (h: Record<string, string>) => ({ ...h, 'webhook-timestamp': `${h['webhook-timestamp']}000` }),
      'bad_timestamp',
    ],
    [
      'a negative timestamp',
      (h: Record<string, string>) => ({ ...h, 'webhook-timestamp': '-1' }),
      'bad_timestamp',
    ],
    [
      'a float timestamp',
      (h: Record<string, string>) => ({ ...h, 'webhook-timestamp': `${h['webhook-timestamp']}.5` }),
      'bad_timestamp',
    ],
    [
      'another id (signature bound to the id)',
      (h: Record<string, string>) => ({ ...h, 'webhook-id': 'msg_2' }),
      'bad_signature',
    ],
    [
      'a v1a prefix',
      (h: Record<string, string>) => ({
        ...h,
        'webhook-signature': h['webhook-signature']?.replace('v1,', 'v1a,'),
      }),
      'bad_signature',
    ],
    [
      'a truncated signature',
      (h: Record<string, string>) => ({ ...h, 'webhook-signature': h['webhook-signature']?.slice(0, -4) }),
      'bad_signature',
    ],
    [
      'the signature without version',
      (h: Record<string, string>) => ({ ...h, 'webhook-signature': h['webhook-signature']?.slice(3) }),
      'bad_signature',
    ],
  ])('refuses %s', (_label, change, expected) => {
    const headers = change(signed(now)) as Record<string, string>;
    expect(reason(() => verifyWebhook({ headers, body, secrets: [secret], now: () => now }))).toBe(expected);
  });

  it('accepts a valid signature among unknown versions and garbage', () => {
    const headers = signed(now);
    const mixed = {
      ...headers,
      'webhook-signature': `v2,abc v1,!!! ${headers['webhook-signature']} v1a,zzz`,
    };
    expect(reason(() => verifyWebhook({ headers: mixed, body, secrets: [secret], now: () => now }))).toBe(
      'accepted',
    );
  });

  it('refuses everything when no secret is configured', () => {
    expect(reason(() => verifyWebhook({ headers: signed(now), body, secrets: [], now: () => now }))).toBe(
      'no_secret',
    );
  });

  it.each([
    'secret',
    'whsec_',
    'whsec_short',
    'whsec_not base64!!',
    'WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  ])('refuses %j as a signing secret (CONFIG_INVALID)', (secretText) => {
    expect(() => decodeWebhookSecret(secretText)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});
