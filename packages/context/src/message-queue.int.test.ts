import { describeWithAmqp, testAmqp } from '@mt-paas/test-env';
import amqp from 'amqplib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  createContextPropagator,
  createMessageEnvelope,
  type MessageEnvelope,
  runInMessageContext,
} from './propagation.js';
import { currentTenant, requireTenant, runWithTenant } from './tenant-context.js';

describeWithAmqp('tenant context over a real RabbitMQ queue (seed 004 §5.2)', () => {
  let connection: amqp.ChannelModel;
  let channel: amqp.Channel;
  let queue: string;

  beforeAll(async () => {
    const broker = testAmqp();
    queue = broker.name('context_envelopes');
    connection = await amqp.connect(broker.url);
    channel = await connection.createChannel();
    await channel.assertQueue(queue, { exclusive: true, autoDelete: true });
  });

  afterAll(async () => {
    await channel?.close();
    await connection?.close();
  });

  it('publishes from each tenant context and the consumer handler runs in that tenant context', async () => {
    const propagator = createContextPropagator({ signingKey: 'queue-test-signing-key-32-bytes!' });
    const tenants = Array.from({ length: 25 }, (_, index) => `queue_tenant_${index}`);
    const handled: Array<{ sentBy: string; handledAs: string; requestId: string; signed: boolean }> = [];
    const done = new Promise<void>((resolve, reject) => {
      channel
        .consume(queue, (message) => {
          if (message === null) return;
          try {
            const envelope = JSON.parse(message.content.toString('utf8')) as MessageEnvelope<{
              sentBy: string;
            }>;
            const signed = envelope.signature !== undefined;
            const run = signed ? propagator.runInMessageContext.bind(propagator) : runInMessageContext;
            run(envelope, (payload) => {
              handled.push({
                sentBy: payload.sentBy,
                handledAs: currentTenant(),
                requestId: requireTenant().requestId,
                signed,
              });
            });
            channel.ack(message);
            if (handled.length === tenants.length * 2) resolve();
          } catch (error) {
            reject(error);
          }
        })
        .catch(reject);
    });

    await Promise.all(
      tenants.map((tenantId) =>
        runWithTenant({ tenantId, requestId: `req-${tenantId}` }, async () => {
          const plain = createMessageEnvelope({ sentBy: tenantId });
          channel.sendToQueue(queue, Buffer.from(JSON.stringify(plain)));
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
          const signed = propagator.wrapMessage({ sentBy: tenantId });
          channel.sendToQueue(queue, Buffer.from(JSON.stringify(signed)));
        }),
      ),
    );
    await done;

    expect(handled).toHaveLength(50);
    for (const entry of handled) {
      expect(entry.handledAs).toBe(entry.sentBy);
      expect(entry.requestId).toBe(`req-${entry.sentBy}`);
    }
    expect(handled.filter((entry) => entry.signed)).toHaveLength(25);
  });

  it('runs a signed message once: the same bytes delivered again and a message kept past its age are refused', async () => {
    const replayQueue = testAmqp().name('context_replays');
    await channel.assertQueue(replayQueue, { exclusive: true, autoDelete: true });
    const publisher = createContextPropagator({ signingKey: 'queue-test-signing-key-32-bytes!' });
    let clock = Date.now();
    const consumer = createContextPropagator({
      signingKey: 'queue-test-signing-key-32-bytes!',
      maxMessageAgeSeconds: 60,
      now: () => clock,
    });
    const outcomes: string[] = [];
    const expected = 4;
    const done = new Promise<void>((resolve, reject) => {
      channel
        .consume(replayQueue, (message) => {
          if (message === null) return;
          const envelope = JSON.parse(message.content.toString('utf8')) as MessageEnvelope<{ n: number }>;
          try {
            consumer.runInMessageContext(envelope, (payload) =>
              outcomes.push(`ran ${payload.n} as ${currentTenant()}`),
            );
          } catch (error) {
            outcomes.push(`refused ${envelope.payload.n} ${(error as { code?: string }).code}`);
          }
          channel.ack(message);
          if (outcomes.length === expected) resolve();
        })
        .catch(reject);
    });
    const first = runWithTenant({ tenantId: 'queue_replay' }, () => publisher.wrapMessage({ n: 1 }));
    const bytes = Buffer.from(JSON.stringify(first));
    channel.sendToQueue(replayQueue, bytes);
    channel.sendToQueue(replayQueue, bytes); // captured and fed back
    await new Promise((resolve) => setTimeout(resolve, 200));
    clock += 61_000; // the consumer's clock: both of these are now past the 60 s age limit
    const stale = runWithTenant({ tenantId: 'queue_replay' }, () => publisher.wrapMessage({ n: 2 }));
    channel.sendToQueue(replayQueue, Buffer.from(JSON.stringify(stale)));
    channel.sendToQueue(replayQueue, bytes);
    await done;
    expect(outcomes).toEqual([
      'ran 1 as queue_replay',
      'refused 1 CONFLICT',
      'refused 2 UNAUTHENTICATED',
      'refused 1 UNAUTHENTICATED',
    ]);
  });
});
