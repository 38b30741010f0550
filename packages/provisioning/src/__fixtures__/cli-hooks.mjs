// Hooks module for the CLI test (`mt-paas --hooks <this file>`): seeds the admin user idempotently.
import { sql } from 'drizzle-orm';

export const hooks = {
  afterOnboard: ({ scope, input }) =>
    scope.run((tx) =>
      tx.execute(
        sql`insert into users (email, role) values (${input.adminEmail ?? 'admin@example.org'}, 'admin') on conflict do nothing`,
      ),
    ),
};
