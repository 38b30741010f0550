import { runWithTenant, type TenantId } from '@mt-paas/context';
import { createCatalog, createPgDriver, createTenantDb } from '@mt-paas/db';
import { checkCatalogGate } from '@mt-paas/db/testing';
import { createAppRole, describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import { asc, sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chatHis, userMst } from './__fixtures__/keli-schema.js';

/**
 * docs/migrating-a-service.md, step by step, on a database shaped like KELI Tutor's (seed 002 §2.1,
 * §4.1): the central `hltutor.tenants` table, one schema per tenant named by the bare tenant id with
 * `user_mst` and `chat_his`. The service moves onto @mt-paas/db keeping its schema names and its rows.
 */
const MIGRATIONS = new URL('./__fixtures__/keli-migrations', import.meta.url).pathname;

const KELI_DATABASE = `
CREATE SCHEMA hltutor;
CREATE TABLE hltutor.tenants (
    tenant_id VARCHAR(50) PRIMARY KEY,
    tenant_name VARCHAR(200) NOT NULL,
    admin_email VARCHAR(200),
    admin_name VARCHAR(100),
    university_name VARCHAR(200),
    contact VARCHAR(100),
    description TEXT,
    application_id INTEGER,
    application_kind VARCHAR(20),
    status VARCHAR(20) DEFAULT 'active',
    created_at TIMESTAMP DEFAULT NOW(),
    deleted_at TIMESTAMP,
    deleted_reason VARCHAR(255),
    suspended_at TIMESTAMP,
    suspended_reason VARCHAR(255)
);
INSERT INTO hltutor.tenants (tenant_id, tenant_name, admin_email, application_id, application_kind, status) VALUES
  ('univ_8', '광주대학교', 'admin@gwangju.ac.kr', 8, 'service', 'active'),
  ('demo_7', '데모', 'demo@example.ac.kr', 7, 'demo', 'active');
${['univ_8', 'demo_7']
  .map(
    (schema) => `
CREATE SCHEMA ${schema};
CREATE TABLE ${schema}.user_mst (
    user_id SERIAL PRIMARY KEY,
    email VARCHAR(200) NOT NULL UNIQUE,
    user_nm VARCHAR(100),
    role VARCHAR(20) NOT NULL DEFAULT 'student',
    reg_dtm TIMESTAMP NOT NULL DEFAULT NOW()
);
CREATE TABLE ${schema}.chat_his (
    chat_id SERIAL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES ${schema}.user_mst (user_id),
    question TEXT NOT NULL,
    answer TEXT,
    reg_dtm TIMESTAMP NOT NULL DEFAULT NOW()
);`,
  )
  .join('\n')}
INSERT INTO univ_8.user_mst (email, user_nm, role) VALUES ('admin@gwangju.ac.kr', '관리자', 'admin'), ('kim@gwangju.ac.kr', '김학생', 'student');
INSERT INTO univ_8.chat_his (user_id, question, answer) VALUES (2, '광합성이란?', '빛 에너지로 포도당을 만드는 과정');
INSERT INTO demo_7.user_mst (email, user_nm, role) VALUES ('demo@example.ac.kr', '데모관리자', 'admin');
INSERT INTO demo_7.chat_his (user_id, question, answer) VALUES (1, 'demo question', 'demo answer');
`;

describeWithPostgres(
  'migrating a KELI-Tutor-style service onto @mt-paas/db (docs/migrating-a-service.md)',
  () => {
    const database = useTestDatabase({ label: 'keli' });
    let catalog: Awaited<ReturnType<typeof createCatalog>>;
    let tenantDb: Awaited<ReturnType<typeof createTenantDb>>;
    let appRole: string;
    let appUrl: string;

    beforeAll(async () => {
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      await client.query(KELI_DATABASE);
      await client.end();

      // step 1: the catalog beside hltutor (schema mt_paas), the tenants copied in with their schema names
      catalog = await createCatalog({ connectionString: database.url });
      await catalog.migrate();
      const { rows } = await catalog.driver.query<{
        tenant_id: string;
        tenant_name: string;
        admin_email: string | null;
        application_id: number | null;
        application_kind: 'demo' | 'service' | null;
        status: string;
      }>('SELECT * FROM hltutor.tenants ORDER BY tenant_id');
      for (const row of rows) {
        await catalog.tenants.upsert({
          id: row.tenant_id,
          name: row.tenant_name,
          status: row.status === 'deleted' ? 'deleted' : row.status === 'suspended' ? 'suspended' : 'active',
          ...(row.admin_email === null ? {} : { adminEmail: row.admin_email }),
          ...(row.application_id === null ? {} : { applicationId: row.application_id }),
          ...(row.application_kind === null ? {} : { applicationKind: row.application_kind }),
          placement: { mode: 'schema', location: row.tenant_id }, // keep the schema name
        });
      }

      // step 2: an app role that cannot bypass row-level security, and the tenant db in schema mode
      const app = await createAppRole(database.url, { schemas: ['public'] });
      appRole = app.name;
      appUrl = app.url;
      tenantDb = await createTenantDb({
        mode: 'schema',
        catalog,
        connectionString: app.url,
        migrationsFolder: MIGRATIONS,
      });
      // step 3: the adoption migration, once per tenant schema
      await tenantDb.migrateTenants();
    }, 120_000);

    afterAll(async () => {
      await tenantDb?.close();
      await catalog?.close();
    });

    const as = <T>(tenantId: string, fn: Parameters<typeof tenantDb.run<T>>[0]) =>
      runWithTenant({ tenantId: tenantId as TenantId }, () => tenantDb.run(fn));

    it('keeps every schema name and every row, now tagged with its tenant', async () => {
      const admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      const schemas = await admin.query(
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name IN ('univ_8', 'demo_7', 't_univ_8', 't_demo_7') ORDER BY 1",
      );
      expect(schemas.rows.map((row) => row.schema_name)).toEqual(['demo_7', 'univ_8']);
      const tagged = await admin.query(
        'SELECT tenant_id, count(*)::int AS n FROM univ_8.user_mst GROUP BY 1 UNION ALL SELECT tenant_id, count(*)::int FROM demo_7.user_mst GROUP BY 1 ORDER BY 1',
      );
      expect(tagged.rows).toEqual([
        { tenant_id: 'demo_7', n: 1 },
        { tenant_id: 'univ_8', n: 2 },
      ]);
      await admin.end();

      const users = await as('univ_8', (tx) => tx.select().from(userMst).orderBy(asc(userMst.userId)));
      expect(users.map((user) => [user.userId, user.email, user.tenantId])).toEqual([
        [1, 'admin@gwangju.ac.kr', 'univ_8'],
        [2, 'kim@gwangju.ac.kr', 'univ_8'],
      ]);
      const chats = await as('demo_7', (tx) => tx.select().from(chatHis));
      expect(chats.map((chat) => chat.question)).toEqual(['demo question']);
    });

    it('scopes every unit to its tenant: the old search_path trick and qualified names reach nothing', async () => {
      // new rows get the tenant from the unit (the serial keeps counting in the tenant's own schema)
      const inserted = await as('demo_7', (tx) =>
        tx.insert(userMst).values({ email: 'new@example.ac.kr', userNm: '신규' }).returning(),
      );
      expect(inserted[0]).toMatchObject({ tenantId: 'demo_7', userId: 2 });
      // what KELI did by hand — another schema, qualified — fails inside a unit of demo_7
      await expect(as('demo_7', (tx) => tx.execute(sql`SELECT * FROM univ_8.user_mst`))).rejects.toThrow();
      await expect(
        as('demo_7', (tx) =>
          tx.execute(sql`SET LOCAL search_path TO univ_8, public`).then(() => tx.select().from(userMst)),
        ),
      ).rejects.toThrow();
      // and the app role outside a unit reaches nothing (no tenant set → the schema's pin refuses)
      const app = createPgDriver({ connectionString: appUrl });
      try {
        await expect(app.query('SELECT * FROM univ_8.user_mst')).rejects.toThrow(/mt_paas_tenant_pin/);
      } finally {
        await app.close();
      }
    });

    it('passes the catalog gate (RLS forced, tenant-leading keys, no bypass) on the adopted schemas', async () => {
      const admin = createPgDriver({ connectionString: database.url });
      try {
        expect(await checkCatalogGate(admin, { appRole, schemas: ['univ_8', 'demo_7'] })).toEqual([]);
      } finally {
        await admin.close();
      }
    });

    it('gives a new tenant the same tables in a schema of its own name', async () => {
      await catalog.tenants.upsert({
        id: 'univ_9',
        name: '새 대학',
        status: 'active',
        placement: { mode: 'schema', location: 'univ_9' },
      });
      await tenantDb.createTenantStorage('univ_9' as TenantId);
      await as('univ_9', (tx) => tx.insert(userMst).values({ email: 'admin@univ9.ac.kr', role: 'admin' }));
      expect(await as('univ_9', (tx) => tx.select({ email: userMst.email }).from(userMst))).toEqual([
        { email: 'admin@univ9.ac.kr' },
      ]);
      expect(await as('univ_8', (tx) => tx.select({ email: userMst.email }).from(userMst))).toHaveLength(2);
    });
  },
);
