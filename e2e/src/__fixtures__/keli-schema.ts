/**
 * The KELI-Tutor tables as mt-paas tenant tables (what docs/migrating-a-service.md declares): the
 * same table and column names, `tenant_id` added by `tenantTable()`. Their migration is the hand-written
 * adoption in `keli-migrations/` (it also works on an empty schema, for new tenants).
 */
import { tenantTable } from '@mt-paas/db';
import { integer, serial, text, timestamp, varchar } from 'drizzle-orm/pg-core';

export const userMst = tenantTable('user_mst', {
  userId: serial('user_id').primaryKey(),
  email: varchar('email', { length: 200 }).notNull().unique(),
  userNm: varchar('user_nm', { length: 100 }),
  role: varchar('role', { length: 20 }).notNull().default('student'),
  regDtm: timestamp('reg_dtm').notNull().defaultNow(),
});

export const chatHis = tenantTable('chat_his', {
  chatId: serial('chat_id').primaryKey(),
  userId: integer('user_id').notNull(),
  question: text('question').notNull(),
  answer: text('answer'),
  regDtm: timestamp('reg_dtm').notNull().defaultNow(),
});
