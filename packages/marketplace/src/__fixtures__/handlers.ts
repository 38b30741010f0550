import type { MarketplaceHandlers } from '../receiver.js';

/** Handlers that do nothing, for tests that exercise the receiver's routing, config or SSO; `extra` adds or replaces some. */
export function noopHandlers(extra: Partial<MarketplaceHandlers> = {}): MarketplaceHandlers {
  return {
    onProvisionRequested: () => {},
    onSubscriptionUpdated: () => {},
    onServiceCancelled: () => {},
    onUserDeleted: () => {},
    onBlocked: () => {},
    onUnblocked: () => {},
    ...extra,
  };
}
