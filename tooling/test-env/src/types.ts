/** The three services an integration test may need. */
export type ServiceName = 'postgres' | 'redis' | 'amqp';

/** Where a real server came from, in the order they are tried. */
export type ServerSource = 'env' | 'local' | 'testcontainers';

/** A real server is reachable: tests that need it run against `url`. */
export interface AvailableService {
  available: true;
  source: ServerSource;
  /**
   * Admin connection URL. For Postgres this points at a maintenance database with a role that
   * may CREATE DATABASE (never hand it to code under test: use `createTestDatabase()`).
   */
  url: string;
  /** Human-readable description printed by the globalSetup (server version, host). */
  detail: string;
}

/** No real server: tests that need one are skipped with `reason`. */
export interface UnavailableService {
  available: false;
  /** What stands in: PGlite for Postgres, in-process stores for Redis, nothing for RabbitMQ. */
  fallback: 'pglite' | 'memory' | 'none';
  /** Why no server was used, and how to get one. Shown as the skip reason. */
  reason: string;
}

export type ServiceBackend = AvailableService | UnavailableService;

/** What the globalSetup decided, handed to every test file through vitest's `provide`/`inject`. */
export interface TestBackend {
  /** Identifies this test run; every database, role and key prefix it creates carries it. */
  runId: string;
  postgres: ServiceBackend & {
    /** `server_version_num` (e.g. 150020) when a server is available. */
    serverVersion?: number;
  };
  redis: ServiceBackend;
  amqp: ServiceBackend;
}

/** The value provided under {@link PROVIDE_KEY}: the backend plus a per-run secret for role passwords. */
export interface ProvidedTestEnv {
  backend: TestBackend;
  /** Random per run; role passwords are derived from it so every test file computes the same one. */
  runSecret: string;
  /** The vitest project (`int:<package>`) this value was provided to; templates are scoped by it. */
  projectName: string;
}

export const PROVIDE_KEY = 'mtPaasTestEnv' as const;

declare module 'vitest' {
  export interface ProvidedContext {
    mtPaasTestEnv: ProvidedTestEnv;
  }
}
