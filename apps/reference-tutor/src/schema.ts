/**
 * The tutor's tenant tables, declared once with `tenantTable()` from `@mt-paas/db`: each gets a
 * `tenant_id` column leading its keys and a row-level-security policy, and the same declaration serves
 * the `row`, `schema` and `database` modes. Migrations: `drizzle/` (`pnpm … generate`).
 *
 * No foreign keys: every key is `(tenant_id, id)`, and the app deletes a course's documents, chunks and
 * chat history in the same unit of work as the course.
 */
import { tenantTable } from '@mt-paas/db';
import { index, integer, jsonb, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/** Roles of a tenant's users; the admin is created at onboarding from the market's admin email. */
export const USER_ROLES = ['admin', 'instructor', 'student'] as const;
export type UserRole = (typeof USER_ROLES)[number];

/** A tenant's users (the seed's `user_mst`). */
export const users = tenantTable('users', {
  id: uuid('id').defaultRandom().primaryKey(),
  email: text('email').notNull().unique(),
  name: text('name').notNull(),
  role: text('role').$type<UserRole>().notNull().default('student'),
  /** scrypt hash (`scrypt$N$r$p$salt$hash`), null until the user sets a password. */
  passwordHash: text('password_hash'),
  /** The marketplace member id of a user who came through SSO. */
  marketUserId: text('market_user_id'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  lastLoginAt: timestamp('last_login_at', { withTimezone: true }),
});

/** One-time password-set tokens (only their SHA-256 is stored). */
export const passwordTokens = tenantTable('password_tokens', {
  tokenHash: text('token_hash').primaryKey(),
  userId: uuid('user_id').notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  usedAt: timestamp('used_at', { withTimezone: true }),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

export const courses = tenantTable('courses', {
  id: uuid('id').defaultRandom().primaryKey(),
  title: text('title').notNull(),
  description: text('description').notNull().default(''),
  createdBy: uuid('created_by'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export const documents = tenantTable(
  'documents',
  {
    id: uuid('id').defaultRandom().primaryKey(),
    courseId: uuid('course_id').notNull(),
    title: text('title').notNull(),
    contentType: text('content_type').notNull(),
    content: text('content').notNull(),
    chunkCount: integer('chunk_count').notNull(),
    createdBy: uuid('created_by'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index('documents_course_idx').on(table.tenantId, table.courseId)],
);

/** The text of every chunk; its vector lives in the tenant's vector store under the same id. */
export const documentChunks = tenantTable(
  'document_chunks',
  {
    id: uuid('id').defaultRandom().primaryKey(),
    documentId: uuid('document_id').notNull(),
    courseId: uuid('course_id').notNull(),
    chunkIndex: integer('chunk_index').notNull(),
    content: text('content').notNull(),
  },
  (table) => [index('document_chunks_document_idx').on(table.tenantId, table.documentId)],
);

/** Questions and answers (the seed's `chat_his`). */
export const chatMessages = tenantTable(
  'chat_messages',
  {
    id: uuid('id').defaultRandom().primaryKey(),
    userId: uuid('user_id'),
    courseId: uuid('course_id'),
    question: text('question').notNull(),
    answer: text('answer').notNull(),
    sources: jsonb('sources').$type<{ documentId: string; title: string; chunk: number }[]>().notNull(),
    model: text('model').notNull(),
    totalTokens: integer('total_tokens').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index('chat_messages_created_idx').on(table.tenantId, table.createdAt)],
);

export const quizzes = tenantTable('quizzes', {
  id: uuid('id').defaultRandom().primaryKey(),
  courseId: uuid('course_id').notNull(),
  questions: jsonb('questions').$type<QuizQuestion[]>().notNull(),
  createdBy: uuid('created_by'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

/** One generated question: a sentence of a document with a key term blanked out. */
export interface QuizQuestion {
  prompt: string;
  choices: string[];
  answerIndex: number;
  source: { documentId: string; title: string; chunk: number };
}
