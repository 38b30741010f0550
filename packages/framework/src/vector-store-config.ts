import type { DatabaseConfig } from '@mt-paas/config';
import {
  createChromaVectorStore,
  createMemoryVectorStore,
  createPgVectorStore,
  createQdrantVectorStore,
  type SqlExecutor,
  type VectorStore,
} from '@mt-paas/providers-vector';

/** What the config does not say: the embedding space, and where pgvector runs without a URL. */
export interface VectorStoreFromConfigOptions {
  /** Length of the embedding model's vectors. */
  dimensions: number;
  /** The embedding model (part of collection / table names). */
  model: string;
  /** pgvector without `database.vector.url`: the catalog's database (a pg Pool or the embedded PGlite). */
  executor?: SqlExecutor;
  /** pgvector without `database.vector.url` or `executor`: a Postgres URL. */
  connectionString?: string;
}

/**
 * The store `database.vector` names (already validated by `@mt-paas/config`: type, url, api_key,
 * collection_prefix): `memory` (the embedded default), `pgvector`, `qdrant` or `chroma`.
 */
export function createVectorStoreFromConfig(
  vector: DatabaseConfig['vector'],
  options: VectorStoreFromConfigOptions,
): VectorStore {
  const common = { dimensions: options.dimensions, model: options.model };
  switch (vector.type) {
    case 'memory':
      return createMemoryVectorStore({ dimensions: options.dimensions });
    case 'qdrant':
      return createQdrantVectorStore({
        ...common,
        collectionPrefix: vector.collectionPrefix,
        ...(vector.url === undefined ? {} : { url: vector.url }),
        ...(vector.apiKey === undefined ? {} : { apiKey: vector.apiKey }),
      });
    case 'chroma':
      return createChromaVectorStore({
        ...common,
        collectionPrefix: vector.collectionPrefix,
        ...(vector.url === undefined ? {} : { url: vector.url }),
        ...(vector.apiKey === undefined ? {} : { apiKey: vector.apiKey }),
      });
    case 'pgvector': {
      const connectionString = vector.url ?? options.connectionString;
      return createPgVectorStore({
        ...common,
        tablePrefix: vector.collectionPrefix,
        ...(connectionString !== undefined
          ? { connectionString }
          : options.executor === undefined
            ? {}
            : { executor: options.executor }),
      });
    }
  }
}
