import type { TenantDb } from '@mt-paas/db';
import { asc } from 'drizzle-orm';
import { courses, enrollments, users } from './app-schema.js';

/** Text that COPY must escape: tabs, newlines, backslashes, `\N`, quotes, non-ASCII, emoji. */
export const AWKWARD = ['tab\there', 'line\nbreak\r\n', 'back\\slash \\N', 'quote \' " ;--', '한림대 🎓', ''];

/** Writes courses (with awkward titles), enrollments (FK to courses) and a second user. */
export async function seedTenantData(tenantDb: TenantDb, tenantId: string): Promise<void> {
  await tenantDb.forTenant(tenantId).run(async (tx) => {
    const inserted = await tx
      .insert(courses)
      .values(AWKWARD.map((title, index) => ({ title, code: `c${index}`, seats: index * 7 })))
      .returning({ id: courses.id });
    await tx.insert(enrollments).values(
      inserted.flatMap((course, index) => [
        { courseId: course.id, student: `s${index}a` },
        { courseId: course.id, student: `s${index}b` },
      ]),
    );
    await tx.insert(users).values({ email: `teacher@${tenantId}.ac.kr`, role: 'teacher' });
  });
}

/** Everything the tenant can see, in a stable order (ids included: they must survive the trip). */
export async function readTenantData(run: TenantDb['forTenant'] extends (id: string) => infer S ? S : never) {
  return run.run(async (tx) => ({
    courses: await tx.select().from(courses).orderBy(asc(courses.code)),
    enrollments: await tx.select().from(enrollments).orderBy(asc(enrollments.student)),
    users: (await tx.select().from(users).orderBy(asc(users.email))).map((user) => ({
      ...user,
      createdAt: user.createdAt.toISOString(),
    })),
  }));
}
