import { describe, expect, it } from 'vitest';
import { EVENT_SCHEMAS, marketTime, parseEvent } from './events.js';

const codeOf = (run: () => unknown) => {
  try {
    run();
    return 'ok';
  } catch (error) {
    return (error as { details: { reason: string } }).details.reason;
  }
};

describe('event schemas', () => {
  it('parses every event type at version 1 and ignores unknown fields', () => {
    const samples: Record<string, unknown> = {
      'tenant.provision_requested': {
        tenant_id: 'univ_8',
        tenant_name: '광주대학교',
        admin_email: 'admin@gwangju.ac.kr',
        admin_name: '관리자',
        institution: 'Gwangju University',
        application_id: 17,
        application_kind: 'demo',
        plan: 'starter',
        demo_expires_at: '2026-02-01T00:00:00Z',
        later_field: true,
      },
      'subscription.updated': { tenant_id: 'univ_8', plan: 'free', expires_at: null },
      'service.cancelled': { application_id: '17', tenant_id: 'univ_8' },
      'user.deleted': { user_id: 5, email: 'a@b.c', deleted_at: '2026-01-08T10:00:00.123456' },
      'tenant.blocked': { tenant_id: 'univ_8', reason: 'violation', grace_period_hours: 0 },
      'tenant.unblocked': { tenant_id: 'univ_8' },
    };
    for (const type of Object.keys(EVENT_SCHEMAS)) {
      const event = parseEvent(type, 1, samples[type]);
      expect(event.type).toBe(type);
      expect(JSON.stringify(event.data)).not.toMatch(/later_field/);
    }
  });

  it('reads a zone-less date-time (Python isoformat) as UTC', () => {
    expect(marketTime.parse('2026-01-08T10:00:00')).toEqual(new Date('2026-01-08T10:00:00Z'));
    expect(marketTime.parse('2026-01-08T10:00:00+09:00')).toEqual(new Date('2026-01-08T01:00:00Z'));
    expect(marketTime.safeParse('yesterday').success).toBe(false);
    expect(marketTime.safeParse('2026-13-45T99:00:00').success).toBe(false);
  });

  it.each([
    ['tenant.exploded', 1, {}, 'unknown_event_type'],
    ['constructor', 1, {}, 'unknown_event_type'],
    ['toString', 1, {}, 'unknown_event_type'],
    ['tenant.blocked', 2, {}, 'unknown_event_type'.replace('type', 'version')],
    ['tenant.blocked', 1, { tenant_id: 'univ_8' }, 'invalid_event'],
    ['tenant.blocked', 1, { tenant_id: 'UNIV', reason: 'x' }, 'invalid_event'],
    [
      'subscription.updated',
      1,
      { tenant_id: 'univ_8', plan: 'x', features: { quiz: 'yes' } },
      'invalid_event',
    ],
    ['tenant.provision_requested', 1, { tenant_id: 'univ_8', application_kind: 'trial' }, 'invalid_event'],
    ['user.deleted', 1, null, 'invalid_event'],
  ])('refuses %s v%i %j (%s)', (type, version, data, reason) => {
    expect(codeOf(() => parseEvent(type, version, data))).toBe(reason);
  });
});
