import type { TenantEvent, TenantEventBus, TenantId, Unsubscribe } from '@mt-paas/context';
import { isTenantId } from '@mt-paas/context';
import type { Redis } from 'ioredis';
import { z } from 'zod';

/** Options of {@link createRedisEventBus}. */
export interface RedisEventBusOptions {
  /** A connected ioredis client used to publish. A duplicate is made for subscribing. */
  redis: Redis;
  /** Pub/sub channel. @default 'mtpaas:tenant-events' */
  channel?: string;
  /** Called with messages that are not valid tenant events (they are dropped). */
  onInvalidMessage?: (raw: string, error: unknown) => void;
}

const tenantIdSchema = z.string().refine(isTenantId, 'invalid tenant id');
const isoDate = z.string();
const eventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('tenant.changed'),
    tenantId: tenantIdSchema,
    status: z
      .enum(['provisioning', 'active', 'grace', 'suspended', 'blocked', 'deleted', 'purged'])
      .optional(),
    at: isoDate,
    origin: z.string().optional(),
  }),
  z.object({
    type: z.literal('tenant.deleted'),
    tenantId: tenantIdSchema,
    at: isoDate,
    origin: z.string().optional(),
  }),
  z.object({
    type: z.literal('tenant.blocked'),
    tenantId: tenantIdSchema,
    block: z.object({
      reason: z.string(),
      message: z.string().optional(),
      blockAt: z.coerce.date().optional(),
      until: z.coerce.date().optional(),
    }),
    at: isoDate,
    origin: z.string().optional(),
  }),
  z.object({
    type: z.literal('tenant.unblocked'),
    tenantId: tenantIdSchema,
    at: isoDate,
    origin: z.string().optional(),
  }),
]);

/** Parses a tenant event received from the wire. */
export function parseTenantEvent(raw: string): TenantEvent {
  const parsed = eventSchema.parse(JSON.parse(raw));
  return { ...parsed, tenantId: parsed.tenantId as TenantId } as TenantEvent;
}

/**
 * A `TenantEventBus` over Redis pub/sub: every instance connected to the same Redis hears every
 * event (cache invalidation, kill switch) within one network round trip. Pub/sub is fire-and-forget:
 * an instance that is disconnected at the moment misses the event, so caches also expire by TTL.
 */
export function createRedisEventBus(options: RedisEventBusOptions): TenantEventBus {
  const channel = options.channel ?? 'mtpaas:tenant-events';
  const publisher = options.redis;
  const handlers = new Set<(event: TenantEvent) => void | Promise<void>>();
  let subscriber: Redis | undefined;
  let ready: Promise<void> | undefined;

  const onMessage = (received: string, raw: string) => {
    if (received !== channel) return;
    let event: TenantEvent;
    try {
      event = parseTenantEvent(raw);
    } catch (error) {
      options.onInvalidMessage?.(raw, error);
      return;
    }
    for (const handler of handlers) {
      Promise.resolve()
        .then(() => handler(event))
        .catch(() => {});
    }
  };

  async function ensureSubscribed(): Promise<void> {
    if (ready !== undefined) return ready;
    ready = (async () => {
      subscriber = publisher.duplicate({ enableOfflineQueue: true, lazyConnect: false });
      subscriber.on('message', onMessage);
      subscriber.on('error', () => {});
      await subscriber.subscribe(channel);
    })();
    return ready;
  }

  return {
    async publish(event) {
      await publisher.publish(channel, JSON.stringify(event));
    },
    async subscribe(handler): Promise<Unsubscribe> {
      handlers.add(handler);
      await ensureSubscribed();
      return async () => {
        handlers.delete(handler);
      };
    },
    async close() {
      handlers.clear();
      if (subscriber !== undefined) {
        subscriber.removeListener('message', onMessage);
        subscriber.disconnect();
        subscriber = undefined;
        ready = undefined;
      }
    },
  };
}
