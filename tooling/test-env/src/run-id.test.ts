import { describe, expect, it } from 'vitest';
import {
  formatRunId,
  isStaleRun,
  parseRunId,
  runIdOfName,
  runIdOfRedisKey,
  STARTUP_GRACE_MS,
  slug,
} from './run-id.js';

const now = Date.UTC(2026, 10, 22, 20, 0, 0);
const mine = formatRunId({ startedAt: now, pid: 4242, host: 'ab12' });

describe('run ids', () => {
  it('round-trips through format and parse (second precision)', () => {
    expect(parseRunId(formatRunId({ startedAt: now + 789, pid: 99999, host: 'zz00' }))).toEqual({
      startedAt: now,
      pid: 99999,
      host: 'zz00',
    });
    expect(parseRunId('not a run id')).toBeUndefined();
  });

  it('finds the run id in database and role names, and only in ours', () => {
    expect(runIdOfName(`mtp_t_${mine}_tenant_cache_x1y2z3`)).toBe(mine);
    expect(runIdOfName(`mtp_t_${mine}_tpl_catalog`)).toBe(mine);
    expect(runIdOfName(`mtp_r_${mine}_app`)).toBe(mine);
    expect(runIdOfName('mtp_tenants')).toBeUndefined();
    expect(runIdOfName('postgres')).toBeUndefined();
    expect(runIdOfRedisKey(`mtp:t:${mine}:redis_abc123:counter`)).toBe(mine);
    expect(runIdOfRedisKey('mtp:tenant:acme')).toBeUndefined();
  });
});

describe('isStaleRun', () => {
  const live = formatRunId({ startedAt: now - 3_600_000, pid: 7, host: 'cd34' });
  const context = { currentRunId: mine, now, liveRunIds: new Set([live]) };

  it('never drops the current run', () => {
    expect(isStaleRun(mine, context)).toBe(false);
  });

  it('keeps a run whose marker session is open, whatever its host or age', () => {
    expect(isStaleRun(live, context)).toBe(false);
  });

  it('drops a run whose session is gone (finished or crashed)', () => {
    expect(isStaleRun(formatRunId({ startedAt: now - 3_600_000, pid: 1234, host: 'ab12' }), context)).toBe(
      true,
    );
  });

  it('gives a run that just started time to open its session', () => {
    const starting = formatRunId({ startedAt: now - STARTUP_GRACE_MS / 2, pid: 1234, host: 'ab12' });
    expect(isStaleRun(starting, context)).toBe(false);
    expect(isStaleRun(starting, { ...context, now: now + STARTUP_GRACE_MS })).toBe(true);
  });

  it('leaves names it cannot parse alone', () => {
    expect(isStaleRun('garbage', context)).toBe(false);
  });
});

describe('slug', () => {
  it('keeps names inside Postgres identifiers', () => {
    expect(slug('Tenant-Cache.Spec', 20)).toBe('tenant_cache_spec');
    expect(slug('___', 5)).toBe('x');
    expect(slug('abcdefghij_klm', 11)).toBe('abcdefghij');
  });
});
