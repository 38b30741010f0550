/** A small app schema (KELI-Tutor-like) declared once with tenantTable(), used by the tests in every mode. */
import { foreignKey, integer, primaryKey, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { tenantTable } from '../tenant-table.js';

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
