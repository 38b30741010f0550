import type { TenantId } from '@mt-paas/context';

/** A metadata value every store can store and filter on with the same semantics. */
export type VectorMetadataValue = string | number | boolean;

/**
 * Flat metadata of a record. Keys match {@link METADATA_KEY_PATTERN}
 * (`^[A-Za-z_][A-Za-z0-9_]{0,63}$`); values are strings, finite numbers or booleans.
 */
export type VectorMetadata = Record<string, VectorMetadataValue>;

/** One record to store: a caller-chosen id, its embedding and optional metadata. */
export interface VectorRecord {
  /** Caller-chosen id, unique within the tenant (1–512 characters). */
  id: string;
  /** The embedding; its length must equal the store's `dimensions`; must not be all zeros. */
  vector: readonly number[];
  /** Filterable metadata. @default {} */
  metadata?: VectorMetadata;
}

/**
 * A condition on one metadata key: a bare value (equality), `{ $eq: value }` or
 * `{ $in: [values of one type] }`. Equality is type-strict: `1` never matches `"1"` or `true`.
 * A record without the key never matches.
 */
export type VectorFilterCondition =
  | VectorMetadataValue
  | { $eq: VectorMetadataValue }
  | { $in: readonly VectorMetadataValue[] };

/** Conditions on metadata keys, all of which must hold (AND). `{}` matches every record. */
export type VectorFilter = Record<string, VectorFilterCondition>;

/** A top-k similarity query. */
export interface VectorQuery {
  /** The query embedding (same dimensions as the store). */
  vector: readonly number[];
  /** How many matches to return at most (1–1000). @default 10 */
  topK?: number;
  /** Metadata conditions every match must satisfy. @default {} */
  filter?: VectorFilter;
}

/** One query result. */
export interface VectorMatch {
  /** The record's id, as the caller stored it. */
  id: string;
  /** Cosine similarity between the query and the record, in [-1, 1]; higher is closer. */
  score: number;
  /** The record's metadata. */
  metadata: VectorMetadata;
}

/** What to delete: records with these ids and/or matching this filter (both given: both must hold). */
export interface VectorDeleteRequest {
  ids?: readonly string[];
  filter?: VectorFilter;
}

/** The operations on one tenant's vectors. The tenant is never taken from arguments. */
export interface TenantVectorOperations {
  /** Inserts or replaces records by id (idempotent; within one call, the last record of an id wins). */
  upsert(records: readonly VectorRecord[]): Promise<void>;
  /** The `topK` records closest to `query.vector` by cosine similarity, best first. */
  query(query: VectorQuery): Promise<VectorMatch[]>;
  /** Deletes the records selected by ids and/or filter; deleting nothing is not an error. */
  delete(request: VectorDeleteRequest): Promise<void>;
  /** How many records the tenant has (matching `filter` when given). */
  count(filter?: VectorFilter): Promise<number>;
  /** Removes every vector of the tenant (offboarding); the tenant can store again afterwards. */
  purgeTenant(): Promise<void>;
}

/** Which implementation backs a store. */
export type VectorStoreKind = 'memory' | 'pgvector' | 'qdrant' | 'chroma' | (string & {});

/** A store bound to one tenant with {@link VectorStore.forTenant}. */
export interface TenantVectorStore extends TenantVectorOperations {
  readonly kind: VectorStoreKind;
  readonly dimensions: number;
  /** The tenant every operation of this store acts on. */
  readonly tenantId: TenantId;
}

/**
 * A tenant-namespaced vector store. Each operation acts on the tenant of the current
 * context (`requireTenant()`); `forTenant(id)` binds one explicitly (jobs, provisioning).
 */
export interface VectorStore extends TenantVectorOperations {
  readonly kind: VectorStoreKind;
  /** Length of every vector this store holds. */
  readonly dimensions: number;
  /**
   * A store bound to `tenantId`. Inside a tenant context for another tenant its operations throw
   * `CROSS_TENANT_ACCESS`.
   */
  forTenant(tenantId: string): TenantVectorStore;
  /** Releases what the store opened itself (never a pool or database the caller passed in). */
  close(): Promise<void>;
}

/** One condition of a {@link NormalizedFilter}: the key's value must equal one of `values`. */
export interface NormalizedCondition {
  key: string;
  /** One or more values, all of the same type. */
  values: readonly VectorMetadataValue[];
  /** The type shared by `values`. */
  type: 'string' | 'number' | 'boolean';
}

/** A validated filter: conditions ANDed together (empty = everything). */
export type NormalizedFilter = readonly NormalizedCondition[];

/** A validated query handed to a driver. */
export interface NormalizedQuery {
  vector: readonly number[];
  topK: number;
  filter: NormalizedFilter;
}

/** A validated delete request handed to a driver (at least one of ids / filter is set). */
export interface NormalizedDeleteRequest {
  ids: readonly string[] | undefined;
  filter: NormalizedFilter;
}

/** A validated record handed to a driver. */
export interface NormalizedRecord {
  id: string;
  vector: readonly number[];
  metadata: VectorMetadata;
}

/**
 * What an implementation provides; {@link defineVectorStore} adds validation and the tenant
 * namespace on top. Every method receives the tenant explicitly and must confine itself to it.
 */
export interface VectorStoreDriver {
  readonly kind: VectorStoreKind;
  readonly dimensions: number;
  upsert(tenantId: TenantId, records: readonly NormalizedRecord[]): Promise<void>;
  query(tenantId: TenantId, query: NormalizedQuery): Promise<VectorMatch[]>;
  delete(tenantId: TenantId, request: NormalizedDeleteRequest): Promise<void>;
  count(tenantId: TenantId, filter: NormalizedFilter): Promise<number>;
  purgeTenant(tenantId: TenantId): Promise<void>;
  close?(): Promise<void>;
}
