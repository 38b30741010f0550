export type {
  AuditAlert,
  CallOptions,
  Heartbeat,
  MarketplaceClient,
  MarketplaceClientOptions,
  Subscription,
  TenantStatusReport,
} from './client.js';
export { createMarketplaceClient, retryAfterMs } from './client.js';
export type {
  MarketplaceEvent,
  MarketplaceEventType,
  ProvisionRequested,
  ServiceCancelled,
  SubscriptionUpdated,
  TenantBlocked,
  TenantUnblocked,
  UserDeleted,
} from './events.js';
export { EVENT_SCHEMAS, envelopeSchema, ORDERING_KEYS, parseEvent } from './events.js';
export type {
  ClaimedMessage,
  DispatchRound,
  EnqueueOptions,
  Outbox,
  OutboxDispatcher,
  OutboxDispatcherOptions,
  OutboxMessage,
  OutboxOptions,
  OutboxStats,
  TenantStatusJson,
  UsageRecordJson,
} from './outbox.js';
export {
  auditAlert,
  createOutbox,
  createOutboxAuditSink,
  createOutboxDispatcher,
  createOutboxUsageSink,
  tenantStatusMessage,
  usageMessage,
} from './outbox.js';
export type { RawBody } from './read-body.js';
export type {
  CatalogReceiptStoreOptions,
  ReceiptKey,
  ReceiptOutcome,
  ReceiptStore,
  StoredAnswer,
} from './receipts.js';
export { createCatalogReceiptStore, createMemoryReceiptStore } from './receipts.js';
export type {
  Awaitable,
  DeliveryAuth,
  HandlerContext,
  MarketplaceHandlers,
  MarketplaceReceiver,
  MarketplaceReceiverOptions,
  MarketplaceRequest,
  MarketplaceResponse,
  MarketplaceRoute,
  ProvisionResult,
  SsoLoginResponse,
} from './receiver.js';
export { createMarketplaceReceiver, EVENTS_ROUTE, LEGACY_ROUTES } from './receiver.js';
export type {
  MarketplaceLogin,
  MarketplaceSso,
  MarketplaceSsoOptions,
  MemoryReplayStoreOptions,
  ReplayStore,
} from './sso.js';
export {
  createCatalogReplayStore,
  createMarketplaceSso,
  createMemoryReplayStore,
} from './sso.js';
export type { VerifiedWebhook, VerifyWebhookOptions, WebhookHeaders } from './standard-webhooks.js';
export {
  decodeWebhookSecret,
  generateWebhookSecret,
  signWebhook,
  verifyWebhook,
} from './standard-webhooks.js';
