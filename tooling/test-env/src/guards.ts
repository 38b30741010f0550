import { describe, it, type SuiteFactory, type TestFunction } from 'vitest';
import { testBackend } from './test-backend.js';
import type { ServiceName } from './types.js';

/** `undefined` when every service has a real server; otherwise the joined skip reasons. */
export function missingServices(services: readonly ServiceName[]): string | undefined {
  const backend = testBackend();
  const reasons = services.flatMap((service) => {
    const entry = backend[service];
    return entry.available ? [] : [entry.reason];
  });
  return reasons.length > 0 ? reasons.join(' ') : undefined;
}

function skippedName(name: string, reason: string | undefined): string {
  return reason === undefined ? name : `${name} [skipped: ${reason}]`;
}

/**
 * `describe` that runs only when every listed service has a real server; otherwise the block is
 * skipped and its name carries the reason.
 */
export function describeWith(services: readonly ServiceName[], name: string, factory: SuiteFactory): void {
  const reason = missingServices(services);
  describe.skipIf(reason !== undefined)(skippedName(name, reason), factory);
}

/** `it` that runs only when every listed service has a real server (skipped with the reason otherwise). */
export function itWith(services: readonly ServiceName[], name: string, fn: TestFunction): void {
  const reason = missingServices(services);
  it.skipIf(reason !== undefined)(skippedName(name, reason), fn);
}

/** `describe` skipped (with the reason) unless a real Postgres server is available. */
export function describeWithPostgres(name: string, factory: SuiteFactory): void {
  describeWith(['postgres'], name, factory);
}

/** `describe` skipped (with the reason) unless a real Redis server is available. */
export function describeWithRedis(name: string, factory: SuiteFactory): void {
  describeWith(['redis'], name, factory);
}

/** `describe` skipped (with the reason) unless a RabbitMQ broker is available. */
export function describeWithAmqp(name: string, factory: SuiteFactory): void {
  describeWith(['amqp'], name, factory);
}

/** `it` skipped (with the reason) unless a real Postgres server is available. */
export function itWithPostgres(name: string, fn: TestFunction): void {
  itWith(['postgres'], name, fn);
}

/** `it` skipped (with the reason) unless a real Redis server is available. */
export function itWithRedis(name: string, fn: TestFunction): void {
  itWith(['redis'], name, fn);
}

/** `it` skipped (with the reason) unless a RabbitMQ broker is available. */
export function itWithAmqp(name: string, fn: TestFunction): void {
  itWith(['amqp'], name, fn);
}
