/** The demo's one tenant table, declared once with tenantTable(): the same declaration serves every mode. */

import { tenantTable } from '@mt-paas/db';
import { text, timestamp, uuid } from 'drizzle-orm/pg-core';

export const notes = tenantTable('notes', {
  id: uuid('id').defaultRandom().primaryKey(),
  title: text('title').notNull(),
  body: text('body').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});
