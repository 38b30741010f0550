import { expect, it } from 'vitest';
import * as entry from './index.js';
import * as testing from './testing.js';

it('exports the factories, the contract suite and nothing by accident', () => {
  expect(Object.keys(entry).sort()).toEqual([
    'MAX_ID_LENGTH',
    'MAX_TOP_K',
    'MAX_UPSERT_BATCH',
    'METADATA_KEY_PATTERN',
    'VECTOR_STORE_TYPES',
    'cosineSimilarity',
    'createChromaVectorStore',
    'createMemoryVectorStore',
    'createPgVectorStore',
    'createQdrantVectorStore',
    'createVectorStore',
    'createVectorStoreRouter',
    'defineVectorStore',
    'pgVectorSchemaSql',
    'qdrantPointId',
    'vectorStoreConfigSchema',
  ]);
  expect(Object.keys(testing).sort()).toEqual(['deterministicVector', 'testVectorStore']);
});
