import { describe, expect, it } from 'vitest';
import { formatRunId, isStaleRun, parseRunId, runIdOfName, STALE_AFTER_MS, slug } from './run-id.js';

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
  });
});

describe('isStaleRun', () => {
  const context = {
    currentRunId: mine,
    now,
    host: 'ab12',
    isPidAlive: (pid: number) => pid === 4242 || pid === 7,
  };

  it('never drops the current run', () => {
    expect(isStaleRun(mine, context)).toBe(false);
  });

  it('drops a run of this host whose process is gone, and keeps a concurrent one', () => {
    expect(isStaleRun(formatRunId({ startedAt: now - 60_000, pid: 1234, host: 'ab12' }), context)).toBe(true);
    expect(isStaleRun(formatRunId({ startedAt: now - 60_000, pid: 7, host: 'ab12' }), context)).toBe(false);
  });

  it('judges runs of other hosts by age only', () => {
    expect(isStaleRun(formatRunId({ startedAt: now - 60_000, pid: 1234, host: 'cd34' }), context)).toBe(
      false,
    );
    expect(
      isStaleRun(formatRunId({ startedAt: now - STALE_AFTER_MS - 1000, pid: 7, host: 'cd34' }), context),
    ).toBe(true);
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
