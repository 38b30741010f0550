/** The fixture app's tenant tables (SQL: the shared @mt-paas/test-env app migrations + ./migrations), declared with tenantTable(). */
import { tenantTable } from '@mt-paas/db';
import { foreignKey, integer, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

export const courses = tenantTable('courses', {
  id: uuid('id').defaultRandom().primaryKey(),
  title: text('title').notNull(),
  code: text('code').notNull().unique(),
  seats: integer('seats').notNull().default(30),
});

export const enrollments = tenantTable(
  'enrollments',
  {
    id: uuid('id').notNull().defaultRandom(),
    courseId: uuid('course_id').notNull(),
    student: text('student').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.id] }),
    foreignKey({
      columns: [t.tenantId, t.courseId],
      foreignColumns: [courses.tenantId, courses.id],
    }).onDelete('cascade'),
    uniqueIndex('enrollments_student_idx').on(t.courseId, t.student),
  ],
);

export const users = tenantTable('users', {
  id: uuid('id').defaultRandom().primaryKey(),
  email: text('email').notNull().unique(),
  role: text('role').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});
