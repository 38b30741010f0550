import { fileScopeToken } from './file-scope.js';
import { providedTestEnv } from './test-backend.js';
import { TestEnvError } from './test-env-error.js';

export interface TestAmqpOptions {
  /** Readable part of the prefix. @default the test file's name */
  label?: string;
}

/** The run's RabbitMQ server and a name prefix for queues and exchanges owned by the calling test file. */
export interface TestAmqp {
  /** `amqp://…` URL of the run's broker. */
  readonly url: string;
  /** `mtp.t.<runId>.<file>_<random>.` — prefix your exchange and queue names with it (and prefer auto-delete / exclusive queues). */
  readonly prefix: string;
  /** `prefix + name`. */
  name(name: string): string;
}

/** The run's RabbitMQ URL; throws (with the skip reason, or skips when given the test context) when there is none. */
export function requireAmqp(context?: { skip: (note?: string) => void }): { url: string } {
  const amqp = providedTestEnv().backend.amqp;
  if (amqp.available) return { url: amqp.url };
  context?.skip(amqp.reason);
  throw new TestEnvError(
    'TEST_AMQP_UNAVAILABLE',
    `This test needs a RabbitMQ server. ${amqp.reason} Guard it with describeWithAmqp() / itWithAmqp().`,
  );
}

/** RabbitMQ for the calling test file: the broker URL plus a queue/exchange name prefix unique to the file. */
export function testAmqp(options: TestAmqpOptions = {}): TestAmqp {
  const { url } = requireAmqp();
  const { backend } = providedTestEnv();
  const prefix = `mtp.t.${backend.runId}.${fileScopeToken(options.label)}.`;
  return { url, prefix, name: (name) => `${prefix}${name}` };
}
