import { parseConfig } from '@mt-paas/config';
import { describe, expect, it } from 'vitest';
import { createVectorStoreFromConfig } from './vector-store-config.js';

const vectorOf = (yaml: string) => parseConfig(`database:\n  vector:\n${yaml}`, { env: {} }).database.vector;

describe('createVectorStoreFromConfig (database.vector)', () => {
  it('builds the store the section names, namespaced per tenant', async () => {
    const memory = createVectorStoreFromConfig(vectorOf('    type: memory\n'), {
      dimensions: 4,
      model: 'local:hash',
    });
    expect(memory.kind).toBe('memory');
    await memory.forTenant('hallym').upsert([{ id: 'a', vector: [1, 0, 0, 0] }]);
    expect(await memory.forTenant('hallym').count()).toBe(1);
    expect(await memory.forTenant('korea').count()).toBe(0);
    await memory.close();

    const model = { dimensions: 4, model: 'bge-m3' };
    expect(
      createVectorStoreFromConfig(vectorOf('    type: qdrant\n    url: http://127.0.0.1:6333\n'), model).kind,
    ).toBe('qdrant');
    expect(
      createVectorStoreFromConfig(vectorOf('    type: Chroma\n    url: http://127.0.0.1:8000\n'), model).kind,
    ).toBe('chroma');
    expect(createVectorStoreFromConfig(vectorOf('    type: pgvector\n'), model).kind).toBe('pgvector');
  });

  it('refuses what no store can serve at parse time, with the key named', () => {
    expect(() => vectorOf('    type: milvus\n')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => vectorOf('    type: qdrant\n')).toThrow(/database\.vector\.url/);
  });
});
