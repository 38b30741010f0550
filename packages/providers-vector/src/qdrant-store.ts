import { createHash } from 'node:crypto';
import { MtPaasError, type TenantId } from '@mt-paas/context';
import { z } from 'zod';
import { defineVectorStore } from './define-vector-store.js';
import { createHttpClient, oncePerKey, remoteStoreNaming } from './http-client.js';
import type {
  NormalizedCondition,
  NormalizedFilter,
  VectorMatch,
  VectorMetadata,
  VectorStore,
} from './types.js';
import { checkDimensions, sanitizeName } from './validation.js';

/** How tenants map to Qdrant collections. */
export type QdrantLayout = 'shared' | 'collection-per-tenant';

/** Options of {@link createQdrantVectorStore}. */
export interface QdrantVectorStoreOptions {
  /** Qdrant's REST URL. @default 'http://localhost:6333' */
  url?: string;
  /** Sent as the `api-key` header (Qdrant Cloud, or a server with `service.api_key`). @default undefined */
  apiKey?: string;
  /** Length of the embedding model's vectors. */
  dimensions: number;
  /** The embedding model's name; part of the collection name. @default 'default' */
  model?: string;
  /** Prefix of every collection name (the seed's `collection_prefix`). @default 'mt_paas_' */
  collectionPrefix?: string;
  /**
   * `shared`: one collection per embedding model (`<prefix><model>_<dimensions>`), tenants told apart
   * by a `tenant_id` payload index created with `is_tenant: true` (Qdrant's recommended multitenancy).
   * `collection-per-tenant`: `<prefix><tenantId>_<model>_<dimensions>` (few, large tenants).
   * @default 'shared'
   */
  layout?: QdrantLayout;
  /**
   * Shared layout only: build HNSW graphs per tenant instead of one global graph
   * (`hnsw_config: { m: 0, payload_m: 16 }` at creation) — Qdrant's recipe for many tenants,
   * faster indexing; every query is tenant-filtered anyway. Applies when the store creates the collection.
   * @default false
   */
  perTenantIndex?: boolean;
  /** Per-request timeout in milliseconds. @default 30000 */
  timeoutMs?: number;
  /** Retries on network errors, timeouts, 429 and 5xx (every call the store makes is idempotent). @default 2 */
  retries?: number;
}

const NAMESPACE = 'mt-paas.providers-vector.qdrant';

/**
 * The Qdrant point id of a record: a name-based (version 5 layout) UUID of tenant and id,
 * so the same id of two tenants never collides; the original id stays in the payload.
 */
export function qdrantPointId(tenantId: string, id: string): string {
  const hash = createHash('sha1').update(`${NAMESPACE}\u0000${tenantId}\u0000${id}`).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

const okEnvelope = <T extends z.ZodType>(result: T) => z.object({ result, status: z.literal('ok') });
const collectionInfoSchema = okEnvelope(
  z.object({
    config: z.object({
      params: z.object({
        vectors: z.union([
          z.object({ size: z.number(), distance: z.string() }),
          z.record(z.string(), z.unknown()),
        ]),
      }),
    }),
  }),
);
const booleanSchema = okEnvelope(z.boolean());
const updateSchema = okEnvelope(z.object({ status: z.string() }).loose());
const payloadSchema = z.object({
  tenant_id: z.string(),
  record_id: z.string(),
  metadata: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
});
const querySchema = okEnvelope(
  z.object({
    points: z.array(
      z.object({
        id: z.union([z.string(), z.number()]),
        score: z.number(),
        payload: payloadSchema.nullish(),
      }),
    ),
  }),
);
const countSchema = okEnvelope(z.object({ count: z.number() }));

type QdrantCondition = Record<string, unknown>;

function conditionFor(key: string, value: string | number | boolean): QdrantCondition {
  // Qdrant's `match.value` takes keywords, integers and booleans; a fractional number is an exact range.
  if (typeof value === 'number' && !Number.isInteger(value))
    return { key, range: { gte: value, lte: value } };
  return { key, match: { value } };
}

function qdrantCondition(condition: NormalizedCondition): QdrantCondition {
  const key = `metadata.${condition.key}`;
  const [first] = condition.values;
  if (condition.values.length === 1) return conditionFor(key, first!);
  const allKeywordsOrIntegers =
    condition.type === 'string' ||
    (condition.type === 'number' && condition.values.every((value) => Number.isInteger(value)));
  if (allKeywordsOrIntegers) return { key, match: { any: condition.values } };
  return { should: condition.values.map((value) => conditionFor(key, value)) };
}

function tenantFilter(tenantId: TenantId, filter: NormalizedFilter, extra: QdrantCondition[] = []) {
  return {
    must: [{ key: 'tenant_id', match: { value: tenantId } }, ...extra, ...filter.map(qdrantCondition)],
  };
}

/**
 * A Qdrant store over its REST API. Every point carries `tenant_id` in its payload and every
 * read, count and delete is filtered by it; ids become UUIDs ({@link qdrantPointId}).
 *
 * @example
 * const store = createQdrantVectorStore({ url: 'http://localhost:6333', model: 'bge-m3', dimensions: 1024 });
 */
export function createQdrantVectorStore(options: QdrantVectorStoreOptions): VectorStore {
  const dimensions = checkDimensions(options.dimensions);
  const { layout, prefix } = remoteStoreNaming('Qdrant', options, ['shared', 'collection-per-tenant']);
  const modelPart = `${sanitizeName(options.model ?? 'default')}_${dimensions}`;
  const collectionOf = (tenantId: TenantId) =>
    layout === 'shared' ? `${prefix}${modelPart}` : `${prefix}${tenantId}_${modelPart}`;
  const http = createHttpClient({
    provider: 'Qdrant',
    url: options.url ?? 'http://localhost:6333',
    headers: options.apiKey === undefined ? {} : { 'api-key': options.apiKey },
    timeoutMs: options.timeoutMs,
    retries: options.retries,
    errorMessage: (body) => {
      const error = (body as { status?: { error?: unknown } } | undefined)?.status?.error;
      return typeof error === 'string' ? error : undefined;
    },
  });
  const path = (collection: string, suffix = '') => `/collections/${encodeURIComponent(collection)}${suffix}`;

  const createCollection = async (collection: string): Promise<void> => {
    const info = await http.request({
      method: 'GET',
      path: path(collection),
      schema: collectionInfoSchema,
      allowNotFound: true,
    });
    if (info === undefined) {
      await http.request({
        method: 'PUT',
        path: path(collection),
        body: {
          vectors: { size: dimensions, distance: 'Cosine' },
          ...(options.perTenantIndex && layout === 'shared' ? { hnsw_config: { m: 0, payload_m: 16 } } : {}),
        },
        schema: booleanSchema,
        allowConflict: true,
      });
    } else {
      const vectors = info.result.config.params.vectors;
      if (vectors.size !== dimensions || vectors.distance !== 'Cosine') {
        throw new MtPaasError(
          'CONFIG_INVALID',
          `Qdrant collection "${collection}" exists with vectors ${JSON.stringify(vectors)}, not a single Cosine vector of ${dimensions} dimensions; use another collectionPrefix or model name.`,
          { details: { collection } },
        );
      }
    }
    await http.request({
      method: 'PUT',
      path: path(collection, '/index'),
      query: { wait: 'true' },
      body: { field_name: 'tenant_id', field_schema: { type: 'keyword', is_tenant: true } },
      schema: updateSchema,
    });
  };

  const collections = oncePerKey(createCollection);

  return defineVectorStore({
    kind: 'qdrant',
    dimensions,
    async upsert(tenantId, records) {
      const collection = collectionOf(tenantId);
      await collections.get(collection);
      await http.request({
        method: 'PUT',
        path: path(collection, '/points'),
        query: { wait: 'true' },
        body: {
          points: records.map((record) => ({
            id: qdrantPointId(tenantId, record.id),
            vector: record.vector,
            payload: { tenant_id: tenantId, record_id: record.id, metadata: record.metadata },
          })),
        },
        schema: updateSchema,
      });
    },
    async query(tenantId, query) {
      const response = await http.request({
        method: 'POST',
        path: path(collectionOf(tenantId), '/points/query'),
        body: {
          query: query.vector,
          filter: tenantFilter(tenantId, query.filter),
          limit: query.topK,
          with_payload: true,
        },
        schema: querySchema,
        allowNotFound: true,
      });
      return (response?.result.points ?? []).flatMap((point): VectorMatch[] => {
        // Defence in depth: never hand out a point of another tenant, whatever the server answered.
        if (point.payload?.tenant_id !== tenantId) return [];
        return [
          {
            id: point.payload.record_id,
            score: point.score,
            metadata: (point.payload.metadata ?? {}) as VectorMetadata,
          },
        ];
      });
    },
    async delete(tenantId, request) {
      const extra =
        request.ids === undefined ? [] : [{ has_id: request.ids.map((id) => qdrantPointId(tenantId, id)) }];
      await http.request({
        method: 'POST',
        path: path(collectionOf(tenantId), '/points/delete'),
        query: { wait: 'true' },
        body: { filter: tenantFilter(tenantId, request.filter, extra) },
        schema: updateSchema,
        allowNotFound: true,
      });
    },
    async count(tenantId, filter) {
      const response = await http.request({
        method: 'POST',
        path: path(collectionOf(tenantId), '/points/count'),
        body: { filter: tenantFilter(tenantId, filter), exact: true },
        schema: countSchema,
        allowNotFound: true,
      });
      return response?.result.count ?? 0;
    },
    async purgeTenant(tenantId) {
      const collection = collectionOf(tenantId);
      if (layout === 'collection-per-tenant') {
        collections.forget(collection);
        await http.request({
          method: 'DELETE',
          path: path(collection),
          schema: booleanSchema,
          allowNotFound: true,
        });
        return;
      }
      await http.request({
        method: 'POST',
        path: path(collection, '/points/delete'),
        query: { wait: 'true' },
        body: { filter: tenantFilter(tenantId, []) },
        schema: updateSchema,
        allowNotFound: true,
      });
    },
  });
}
