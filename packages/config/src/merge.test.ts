import { describe, expect, it } from 'vitest';
import { deepMerge, dropNulls } from './merge.js';
import { parseConfig } from './parse-config.js';

describe('deepMerge', () => {
  it('merges mappings key by key and replaces lists, scalars and null', () => {
    const base = { a: { b: 1, c: [1, 2], d: { e: 'x' } }, keep: true };
    const override = { a: { c: [3], d: { f: 'y' }, b: null } };
    expect(deepMerge(base, override)).toEqual({ a: { b: null, c: [3], d: { e: 'x', f: 'y' } }, keep: true });
    expect(base).toEqual({ a: { b: 1, c: [1, 2], d: { e: 'x' } }, keep: true });
  });

  it('keeps the base for an undefined override and replaces a mapping with a scalar', () => {
    expect(deepMerge({ a: 1 }, undefined)).toEqual({ a: 1 });
    expect(deepMerge({ a: { b: 1 } }, { a: 'flat' })).toEqual({ a: 'flat' });
  });
});

describe('dropNulls', () => {
  it('drops nulls (so defaults apply) except where null means something', () => {
    expect(
      dropNulls({
        logging: { level: null },
        plans: null,
        custom: { anything: null },
        marketplace: null,
      }),
    ).toEqual({ logging: {}, custom: { anything: null } });
    expect(
      dropNulls({
        plans: {
          starter: null,
          free: {
            rpm: null,
            sla: null,
            quotas: { users: null, storage_mb: { limit: null, soft_limit: null } },
          },
        },
      }),
    ).toEqual({
      plans: { starter: null, free: { rpm: null, quotas: { users: null, storage_mb: { limit: null } } } },
    });
  });

  it('lets an empty plans: section keep the built-in plans', () => {
    expect(Object.keys(parseConfig('plans:\n', { env: {} }).plans)).toEqual([
      'free',
      'starter',
      'professional',
      'enterprise',
    ]);
  });

  it('makes a null quota or limit unlimited, keeping the built-in period', () => {
    const { plans } = parseConfig(
      'plans:\n  free:\n    quotas:\n      users: null\n      storage_mb: { limit: ~, period: never }\n',
      {
        env: {},
      },
    );
    expect(plans.free?.quotas.users).toEqual({ limit: null, period: 'never', enforcement: 'block' });
    expect(plans.free?.quotas.storage_mb).toEqual({ limit: null, period: 'never', enforcement: 'block' });
  });
});
