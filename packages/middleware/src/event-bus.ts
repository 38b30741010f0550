import type { TenantEvent, TenantEventBus, Unsubscribe } from '@mt-paas/context';

/**
 * A `TenantEventBus` inside one process: for a single instance (the embedded default) and tests.
 * Handlers run asynchronously after `publish` resolves-order is kept per handler.
 */
export function createInProcessEventBus(): TenantEventBus {
  const handlers = new Set<(event: TenantEvent) => void | Promise<void>>();
  let closed = false;
  return {
    async publish(event) {
      if (closed) throw new Error('The tenant event bus is closed.');
      const snapshot = [...handlers];
      await Promise.all(
        snapshot.map(async (handler) => {
          try {
            await handler(event);
          } catch {
            // A failing handler must not stop the others; handlers log their own errors.
          }
        }),
      );
    },
    async subscribe(handler): Promise<Unsubscribe> {
      handlers.add(handler);
      return async () => {
        handlers.delete(handler);
      };
    },
    async close() {
      closed = true;
      handlers.clear();
    },
  };
}
