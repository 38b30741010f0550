import { parseTenantId } from '@mt-paas/context';
import { getTableConfig, PgDialect, text } from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import { courses, enrollments } from './__fixtures__/app-schema.js';
import { isTenantTable, tenantTable } from './tenant-table.js';
import { scopeSql } from './unit-of-work.js';

const dialect = new PgDialect();

describe('tenantTable', () => {
  it('adds tenant_id with the session default, first in the primary key and unique constraints', () => {
    const config = getTableConfig(courses);
    const tenantColumn = config.columns.find((column) => column.name === 'tenant_id')!;
    expect(tenantColumn.notNull).toBe(true);
    expect(dialect.sqlToQuery(tenantColumn.default as never).sql).toBe(
      "nullif(current_setting('app.tenant_id', true), '')",
    );
    expect(config.columns.find((column) => column.name === 'id')!.primary).toBe(false);
    expect(config.primaryKeys.map((key) => key.columns.map((column) => column.name))).toEqual([
      ['tenant_id', 'id'],
    ]);
    expect(config.uniqueConstraints.map((key) => key.columns.map((column) => column.name))).toEqual([
      ['tenant_id', 'code'],
    ]);
    expect(isTenantTable(courses)).toBe(true);
  });

  it('leads extra primary keys and unique indexes with tenant_id', () => {
    const config = getTableConfig(enrollments);
    expect(config.primaryKeys.map((key) => key.columns.map((column) => column.name))).toEqual([
      ['tenant_id', 'id'],
    ]);
    const unique = config.indexes.find((index) => index.config.name === 'enrollments_student_idx')!;
    expect(unique.config.columns.map((column) => (column as { name: string }).name)).toEqual([
      'tenant_id',
      'course_id',
      'student',
    ]);
  });

  it('adds a fail-closed policy for USING and WITH CHECK', () => {
    const [policy] = getTableConfig(courses).policies;
    expect(policy?.name).toBe('courses_tenant_isolation');
    expect(policy?.for).toBe('all');
    const expected = `"tenant_id" = nullif(current_setting('app.tenant_id', true), '')`;
    expect(dialect.sqlToQuery(policy!.using!).sql).toBe(expected);
    expect(dialect.sqlToQuery(policy!.withCheck!).sql).toBe(expected);
  });

  it('indexes tenant_id when there is no primary key', () => {
    const logs = tenantTable('logs', { message: text('message').notNull() });
    expect(getTableConfig(logs).indexes.map((index) => index.config.name)).toEqual(['logs_tenant_id_idx']);
  });

  it('refuses a user-declared tenant_id and two primary keys', () => {
    expect(() => tenantTable('bad', { tenantId: text('tenant_id') } as never)).toThrow(/tenantTable adds it/);
    expect(() => tenantTable('bad2', { tenant: text('tenant_id') })).toThrow(/reserved/);
  });
});

describe('scopeSql', () => {
  it('builds one simple-protocol statement from validated names', () => {
    const tenantId = parseTenantId('univ_8');
    expect(scopeSql({ tenantId }, { begin: true })).toBe(
      "BEGIN; SELECT set_config('app.tenant_id', 'univ_8', true)",
    );
    expect(scopeSql({ tenantId, schema: 't_univ_8', role: 'mt_paas_app' }, { begin: false })).toBe(
      `SELECT set_config('app.tenant_id', 'univ_8', true), set_config('search_path', '"t_univ_8"', true); SET LOCAL ROLE "mt_paas_app"`,
    );
  });
});
