export { requireAmqp, type TestAmqp, type TestAmqpOptions, testAmqp } from './amqp.js';
export {
  APP_FIXTURE_MIGRATIONS,
  APP_FIXTURE_USERS_MIGRATION,
  appFixtureMigrationsWith,
} from './app-fixture.js';
export { type AppRole, type CreateAppRoleOptions, createAppRole } from './app-role.js';
export {
  type BackendProbes,
  DEFAULT_URLS,
  describeBackend,
  ENV_VARS,
  type ResolveBackendsOptions,
  type ResolvedBackends,
  resolveBackends,
  servicesRequired,
} from './backend-resolution.js';
export {
  CHROMIUM_ARGS,
  CHROMIUM_PATH,
  chromiumSkipReason,
  describeWithChromium,
  launchChromium,
} from './browser.js';
export {
  describeWith,
  describeWithAmqp,
  describeWithPostgres,
  describeWithRedis,
  itWith,
  itWithAmqp,
  itWithPostgres,
  itWithRedis,
  missingServices,
} from './guards.js';
export { type CreatePgliteDatabaseOptions, createPgliteDatabase } from './pglite.js';
export { quoteIdentifier, quoteLiteral, withDatabase } from './postgres-admin.js';
export type { ContainerRuntime, ProbeResult, StartedContainer } from './probes.js';
export { deleteRedisKeys, requireRedis, type TestRedis, type TestRedisOptions, testRedis } from './redis.js';
export { skipReason, testBackend } from './test-backend.js';
export {
  type CreateTestDatabaseOptions,
  createTestDatabase,
  defineTestTemplate,
  requirePostgres,
  type TestDatabase,
  type TestDatabaseHandle,
  type TestTemplate,
  useTestDatabase,
} from './test-database.js';
export { TestEnvError } from './test-env-error.js';
export type {
  AvailableService,
  ProvidedTestEnv,
  ServerSource,
  ServiceBackend,
  ServiceName,
  TestBackend,
  UnavailableService,
} from './types.js';
