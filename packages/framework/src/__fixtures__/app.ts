/**
 * The test app: the shared @mt-paas/test-env tenant migrations (courses, enrollments, users),
 * declared with tenantTable(), and a Fastify app on the framework as a vendor writes it.
 */
import { tenantTable } from '@mt-paas/db';
import { APP_FIXTURE_USERS_MIGRATION, appFixtureMigrationsWith } from '@mt-paas/test-env';
import { text, uuid } from 'drizzle-orm/pg-core';
import Fastify, { type FastifyInstance } from 'fastify';
import type { FrameworkHooks, ServiceFramework } from '../index.js';

export const FIXTURE_MIGRATIONS = appFixtureMigrationsWith(APP_FIXTURE_USERS_MIGRATION);

export const courses = tenantTable('courses', {
  id: uuid('id').defaultRandom().primaryKey(),
  title: text('title').notNull(),
  code: text('code').notNull().unique(),
});

export const users = tenantTable('users', {
  id: uuid('id').defaultRandom().primaryKey(),
  email: text('email').notNull().unique(),
  role: text('role').notNull(),
});

/** The vendor's hook: the market's admin email becomes the tenant's admin user. */
export const seedAdmin: FrameworkHooks = {
  afterOnboard: ({ scope, adminEmail }) =>
    adminEmail === undefined
      ? undefined
      : scope.run((tx) =>
          tx.insert(users).values({ email: adminEmail, role: 'admin' }).onConflictDoNothing(),
        ),
};

/** A small app on `mt.fastify`. */
export async function buildApp(mt: ServiceFramework): Promise<FastifyInstance> {
  const app = Fastify();
  await app.register(mt.fastify);
  app.get('/courses', async (req) => req.tenantDb((tx) => tx.select({ title: courses.title }).from(courses)));
  app.post<{ Body: { title: string; code: string } }>('/courses', async (req, reply) => {
    const [row] = await req.tenantDb((tx) =>
      tx.insert(courses).values({ title: req.body.title, code: req.body.code }).returning(),
    );
    reply.code(201);
    return row;
  });
  app.get('/users', async (req) =>
    req.tenantDb((tx) => tx.select({ email: users.email, role: users.role }).from(users)),
  );
  app.get('/features/:name', async (req) => ({
    enabled: req.hasFeature((req.params as { name: string }).name),
  }));
  app.get('/open', { config: { mtPaas: { tenant: 'host-only', auth: 'none' } } }, async (req) =>
    req.tenantDb(() => 1),
  );
  return app;
}
