export type { ChromaLayout, ChromaVectorStoreOptions } from './chroma-store.js';
export { createChromaVectorStore } from './chroma-store.js';
export { defineVectorStore, MAX_UPSERT_BATCH } from './define-vector-store.js';
export type { MemoryVectorStoreOptions } from './memory-store.js';
export { createMemoryVectorStore } from './memory-store.js';
export type { IterativeScan, PgVectorStoreOptions, RunScoped, SqlExecutor } from './pgvector-store.js';
export { createPgVectorStore, pgVectorSchemaSql } from './pgvector-store.js';
export type { QdrantLayout, QdrantVectorStoreOptions } from './qdrant-store.js';
export { createQdrantVectorStore, qdrantPointId } from './qdrant-store.js';
export type {
  NormalizedCondition,
  NormalizedDeleteRequest,
  NormalizedFilter,
  NormalizedQuery,
  NormalizedRecord,
  TenantVectorOperations,
  TenantVectorStore,
  VectorDeleteRequest,
  VectorFilter,
  VectorFilterCondition,
  VectorMatch,
  VectorMetadata,
  VectorMetadataValue,
  VectorQuery,
  VectorRecord,
  VectorStore,
  VectorStoreDriver,
  VectorStoreKind,
} from './types.js';
export { cosineSimilarity, MAX_ID_LENGTH, MAX_TOP_K, METADATA_KEY_PATTERN } from './validation.js';
export type { VectorStoreRouterOptions } from './vector-store-router.js';
export { createVectorStoreRouter } from './vector-store-router.js';
