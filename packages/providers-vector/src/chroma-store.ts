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

/** How tenants map to Chroma's tenant / database hierarchy. */
export type ChromaLayout = 'tenant' | 'database';

/** Options of {@link createChromaVectorStore}. */
export interface ChromaVectorStoreOptions {
  /** Chroma's URL (v2 REST API). @default 'http://localhost:8000' */
  url?: string;
  /** Sent as the `x-chroma-token` header (Chroma's token auth). @default undefined */
  apiKey?: string;
  /** Length of the embedding model's vectors. */
  dimensions: number;
  /** The embedding model's name; the collection is `<model>_<dimensions>`. @default 'default' */
  model?: string;
  /** Prefix of the per-tenant Chroma tenant (or database) name (the seed's `collection_prefix`). @default 'mt_paas_' */
  collectionPrefix?: string;
  /**
   * `tenant`: a Chroma tenant `<prefix><tenantId>` per tenant, holding database `database`.
   * `database`: a database `<prefix><tenantId>` per tenant inside the Chroma tenant `chromaTenant`.
   * @default 'tenant'
   */
  layout?: ChromaLayout;
  /** The database inside each per-tenant Chroma tenant (layout `tenant`). @default 'default_database' */
  database?: string;
  /** The shared Chroma tenant (layout `database`). @default 'default_tenant' */
  chromaTenant?: string;
  /** Per-request timeout in milliseconds. @default 30000 */
  timeoutMs?: number;
  /** Retries on network errors, timeouts, 429 and 5xx. @default 2 */
  retries?: number;
}

const emptyObject = z.record(z.string(), z.unknown());
const collectionSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    dimension: z.number().nullish(),
    configuration_json: z
      .object({ hnsw: z.object({ space: z.string().nullish() }).loose().nullish() })
      .loose()
      .nullish(),
    metadata: z.record(z.string(), z.unknown()).nullish(),
  })
  .loose();
const metadataSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]));
const querySchema = z.object({
  ids: z.array(z.array(z.string())),
  distances: z.array(z.array(z.number().nullable())).nullish(),
  metadatas: z.array(z.array(metadataSchema.nullable())).nullish(),
});
const getSchema = z.object({
  ids: z.array(z.string()),
  metadatas: z.array(metadataSchema.nullable()).nullish(),
});
const countSchema = z.number().int().nonnegative();

function chromaCondition(condition: NormalizedCondition): Record<string, unknown> {
  if (condition.values.length === 1) return { [condition.key]: { $eq: condition.values[0] } };
  return { [condition.key]: { $in: condition.values } };
}

/** A Chroma `where` clause (Chroma wants one operator per object: several conditions go in `$and`). */
function chromaWhere(filter: NormalizedFilter): Record<string, unknown> | undefined {
  if (filter.length === 0) return undefined;
  if (filter.length === 1) return chromaCondition(filter[0]!);
  return { $and: filter.map(chromaCondition) };
}

function cleanMetadata(
  metadata: Record<string, string | number | boolean | null> | null | undefined,
): VectorMetadata {
  const result: VectorMetadata = {};
  for (const [key, value] of Object.entries(metadata ?? {})) if (value !== null) result[key] = value;
  return result;
}

/**
 * A Chroma store over the v2 REST API: each tenant gets its own Chroma tenant (or database),
 * created on first use, holding one cosine collection per embedding model. Purging a tenant
 * deletes its database.
 *
 * @example
 * const store = createChromaVectorStore({ url: 'http://localhost:8000', model: 'bge-m3', dimensions: 1024 });
 */
export function createChromaVectorStore(options: ChromaVectorStoreOptions): VectorStore {
  const dimensions = checkDimensions(options.dimensions);
  const { layout, prefix } = remoteStoreNaming('Chroma', options, ['tenant', 'database']);
  const collectionName = `${sanitizeName(options.model ?? 'default')}_${dimensions}`;
  const placement = (tenantId: TenantId) =>
    layout === 'tenant'
      ? { tenant: `${prefix}${tenantId}`, database: options.database ?? 'default_database' }
      : { tenant: options.chromaTenant ?? 'default_tenant', database: `${prefix}${tenantId}` };
  const http = createHttpClient({
    provider: 'Chroma',
    url: options.url ?? 'http://localhost:8000',
    headers: options.apiKey === undefined ? {} : { 'x-chroma-token': options.apiKey },
    timeoutMs: options.timeoutMs,
    retries: options.retries,
    errorMessage: (body) => {
      const message = (body as { message?: unknown } | undefined)?.message;
      return typeof message === 'string' ? message : undefined;
    },
  });
  const enc = encodeURIComponent;
  const databasePath = (tenantId: TenantId) => {
    const { tenant, database } = placement(tenantId);
    return `/api/v2/tenants/${enc(tenant)}/databases/${enc(database)}`;
  };

  const createCollection = async (tenantId: TenantId): Promise<string> => {
    const { tenant, database } = placement(tenantId);
    const existingTenant = await http.request({
      method: 'GET',
      path: `/api/v2/tenants/${enc(tenant)}`,
      schema: z.object({ name: z.string() }),
      allowNotFound: true,
    });
    if (existingTenant === undefined) {
      await http.request({
        method: 'POST',
        path: '/api/v2/tenants',
        body: { name: tenant },
        schema: emptyObject,
        allowConflict: true,
      });
    }
    const existingDatabase = await http.request({
      method: 'GET',
      path: databasePath(tenantId),
      schema: z.object({ name: z.string() }).loose(),
      allowNotFound: true,
    });
    if (existingDatabase === undefined) {
      await http.request({
        method: 'POST',
        path: `/api/v2/tenants/${enc(tenant)}/databases`,
        body: { name: database },
        schema: emptyObject,
        allowConflict: true,
      });
    }
    const collection = await http.request({
      method: 'POST',
      path: `${databasePath(tenantId)}/collections`,
      body: { name: collectionName, get_or_create: true, configuration: { hnsw: { space: 'cosine' } } },
      schema: collectionSchema,
    });
    const space = collection!.configuration_json?.hnsw?.space ?? collection!.metadata?.['hnsw:space'];
    if (
      (space !== undefined && space !== null && space !== 'cosine') ||
      (collection!.dimension ?? dimensions) !== dimensions
    ) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `Chroma collection "${collectionName}" of tenant "${tenantId}" exists with space ${String(space)} and dimension ${String(collection!.dimension)}, not cosine/${dimensions}; use another model name or prefix.`,
        { details: { collection: collectionName, tenantId } },
      );
    }
    return collection!.id;
  };

  const collectionIds = oncePerKey(createCollection);
  const collectionPath = async (tenantId: TenantId): Promise<string> =>
    `${databasePath(tenantId)}/collections/${enc(await collectionIds.get(tenantId))}`;

  return defineVectorStore({
    kind: 'chroma',
    dimensions,
    async upsert(tenantId, records) {
      const path = await collectionPath(tenantId);
      // Chroma's upsert merges metadata into an existing record; to replace it (as every store
      // does) the keys the new metadata drops are sent as null, which Chroma deletes.
      const existing = await http.request({
        method: 'POST',
        path: `${path}/get`,
        body: { ids: records.map((record) => record.id), include: ['metadatas'] },
        schema: getSchema,
      });
      const previous = new Map<string, VectorMetadata>();
      existing!.ids.forEach((id, index) => {
        previous.set(id, cleanMetadata(existing!.metadatas?.[index]));
      });
      await http.request({
        method: 'POST',
        path: `${path}/upsert`,
        body: {
          ids: records.map((record) => record.id),
          embeddings: records.map((record) => record.vector),
          metadatas: records.map((record) => {
            const metadata: Record<string, string | number | boolean | null> = { ...record.metadata };
            for (const key of Object.keys(previous.get(record.id) ?? {}))
              if (!(key in metadata)) metadata[key] = null;
            return Object.keys(metadata).length === 0 ? null : metadata;
          }),
        },
        schema: emptyObject,
      });
    },
    async query(tenantId, query) {
      const path = await collectionPath(tenantId);
      const where = chromaWhere(query.filter);
      const response = await http.request({
        method: 'POST',
        path: `${path}/query`,
        body: {
          query_embeddings: [query.vector],
          n_results: query.topK,
          ...(where === undefined ? {} : { where }),
          include: ['metadatas', 'distances'],
        },
        schema: querySchema,
      });
      const ids = response!.ids[0] ?? [];
      return ids.map(
        (id, index): VectorMatch => ({
          id,
          // Chroma's cosine space reports distance = 1 - cosine similarity.
          score: 1 - (response!.distances?.[0]?.[index] ?? Number.NaN),
          metadata: cleanMetadata(response!.metadatas?.[0]?.[index]),
        }),
      );
    },
    async delete(tenantId, request) {
      const path = await collectionPath(tenantId);
      const where = chromaWhere(request.filter);
      await http.request({
        method: 'POST',
        path: `${path}/delete`,
        body: {
          ...(request.ids === undefined ? {} : { ids: request.ids }),
          ...(where === undefined ? {} : { where }),
        },
        schema: emptyObject.nullable(),
      });
    },
    async count(tenantId, filter) {
      const path = await collectionPath(tenantId);
      const where = chromaWhere(filter);
      if (where === undefined) {
        return (await http.request({ method: 'GET', path: `${path}/count`, schema: countSchema }))!;
      }
      const matching = await http.request({
        method: 'POST',
        path: `${path}/get`,
        body: { where, include: [] },
        schema: getSchema,
      });
      return matching!.ids.length;
    },
    async purgeTenant(tenantId) {
      collectionIds.forget(tenantId);
      await http.request({
        method: 'DELETE',
        path: databasePath(tenantId),
        schema: emptyObject,
        allowNotFound: true,
      });
    },
  });
}
