import { expect, it } from 'vitest';
import * as entry from './index.js';
import * as testing from './testing.js';

it('exports the factories, the contract suite and nothing by accident', () => {
  expect(Object.keys(entry).sort()).toEqual([
    'MAX_ID_LENGTH',
    'MAX_TOP_K',
    'MAX_UPSERT_BATCH',
    'METADATA_KEY_PATTERN',
    'cosineSimilarity',
    'createChromaVectorStore',
    'createMemoryVectorStore',
    'createPgVectorStore',
    'createQdrantVectorStore',
    'createVectorStoreRouter',
    'defineVectorStore',
    'pgVectorSchemaSql',
    'qdrantPointId',
  ]);
  expect(Object.keys(testing).sort()).toEqual(['deterministicVector', 'testVectorStore']);
});
