/**
 * A local stand-in for Chroma's v2 REST API (`/api/v2/tenants/...`): routes, request validation,
 * status codes and bodies (errors `{ error, message }`) of the endpoints the store uses, over an
 * exact in-memory index. Upsert merges metadata into an existing record (a `null` value deletes
 * the key), `where` takes one operator per object, and `cosine` space reports
 * distance = 1 - cosine similarity — as Chroma does.
 */
import { randomUUID } from 'node:crypto';
import {
  cosine,
  HttpFailure,
  isPlainObject,
  type RecordedRequest,
  startFixtureServer,
} from './http-fixture.js';

type Scalar = string | number | boolean;
interface ChromaRecord {
  id: string;
  embedding: number[];
  metadata: Record<string, Scalar> | null;
  document: string | null;
}
interface ChromaCollection {
  id: string;
  name: string;
  tenant: string;
  database: string;
  space: 'l2' | 'cosine' | 'ip';
  dimension: number | null;
  metadata: Record<string, unknown> | null;
  records: Map<string, ChromaRecord>;
}
export interface ChromaDatabase {
  id: string;
  name: string;
  tenant: string;
  collections: Map<string, ChromaCollection>;
}

export interface FakeChroma {
  url: string;
  requests: RecordedRequest[];
  tenants: Map<string, Map<string, ChromaDatabase>>;
  close(): Promise<void>;
}

const ok = (body: unknown) => ({ status: 200, body });
const fail = (status: number, error: string, message: string) => new HttpFailure(status, { error, message });
const invalid = (message: string) => fail(400, 'InvalidArgumentError', message);
const INCLUDE = ['distances', 'documents', 'embeddings', 'metadatas', 'uris'];

function checkFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) {
      throw fail(
        422,
        'UnprocessableEntity',
        `Failed to deserialize the JSON body into the target type: unknown field \`${key}\``,
      );
    }
  }
}

function checkName(name: unknown, what: string): string {
  if (typeof name !== 'string' || name.length < 3 || name.length > 512) {
    throw invalid(`Expected ${what} name to be a string of 3-512 characters, got ${JSON.stringify(name)}`);
  }
  if (
    !/^[a-zA-Z0-9][a-zA-Z0-9._-]*[a-zA-Z0-9]$/.test(name) ||
    name.includes('..') ||
    /^\d+\.\d+\.\d+\.\d+$/.test(name)
  ) {
    throw invalid(
      `Expected a name containing 3-512 characters from [a-zA-Z0-9._-], starting and ending with a character in [a-zA-Z0-9]. Got: ${name}`,
    );
  }
  return name;
}

const isScalar = (value: unknown): value is Scalar =>
  typeof value === 'string' ||
  typeof value === 'boolean' ||
  (typeof value === 'number' && Number.isFinite(value));

type Predicate = (record: ChromaRecord) => boolean;

function compileWhere(where: unknown): Predicate {
  if (!isPlainObject(where)) throw invalid(`Expected where to be a dict, got ${JSON.stringify(where)}`);
  const keys = Object.keys(where);
  if (keys.length !== 1) {
    throw invalid(`Expected where to have exactly one operator, got ${JSON.stringify(where)}`);
  }
  const key = keys[0]!;
  const value = where[key];
  if (key === '$and' || key === '$or') {
    if (!Array.isArray(value) || value.length < 2) {
      throw invalid(
        `Expected where value for ${key} to be a list with at least two where expressions, got ${JSON.stringify(value)}`,
      );
    }
    const parts = value.map(compileWhere);
    return key === '$and'
      ? (record) => parts.every((part) => part(record))
      : (record) => parts.some((part) => part(record));
  }
  if (key.startsWith('$')) throw invalid(`Expected where operator to be one of $and, $or, got ${key}`);
  const read = (record: ChromaRecord) => record.metadata?.[key];
  if (isScalar(value)) return (record) => read(record) === value;
  if (!isPlainObject(value) || Object.keys(value).length !== 1) {
    throw invalid(`Expected operator expression to have exactly one operator, got ${JSON.stringify(value)}`);
  }
  const [operator] = Object.keys(value) as [string];
  const operand = value[operator];
  switch (operator) {
    case '$eq':
    case '$ne': {
      if (!isScalar(operand))
        throw invalid(
          `Expected where operand value to be a str, int, float, or bool, got ${JSON.stringify(operand)}`,
        );
      return operator === '$eq'
        ? (record) => read(record) === operand
        : (record) => read(record) !== undefined && read(record) !== operand;
    }
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte': {
      if (typeof operand !== 'number')
        throw invalid(
          `Expected operand value to be an int or a float for operator ${operator}, got ${JSON.stringify(operand)}`,
        );
      return (record) => {
        const actual = read(record);
        if (typeof actual !== 'number') return false;
        return operator === '$gt'
          ? actual > operand
          : operator === '$gte'
            ? actual >= operand
            : operator === '$lt'
              ? actual < operand
              : actual <= operand;
      };
    }
    case '$in':
    case '$nin': {
      if (!Array.isArray(operand) || operand.length === 0 || !operand.every(isScalar)) {
        throw invalid(
          `Expected where value for ${operator} to be a non-empty list of str, int, float, or bool, got ${JSON.stringify(operand)}`,
        );
      }
      const types = new Set(operand.map((item) => (typeof item === 'number' ? 'number' : typeof item)));
      if (types.size !== 1)
        throw invalid(
          `Expected all values of ${operator} to be of the same type, got ${JSON.stringify(operand)}`,
        );
      return operator === '$in'
        ? (record) => operand.includes(read(record) as Scalar)
        : (record) => read(record) !== undefined && !operand.includes(read(record) as Scalar);
    }
    default:
      throw invalid(
        `Expected where operator to be one of $gt, $gte, $lt, $lte, $ne, $eq, $in, $nin, got ${operator}`,
      );
  }
}

function checkMetadata(
  metadata: unknown,
  index: number,
  allowNull: boolean,
): Record<string, Scalar | null> | null {
  if (metadata === null || metadata === undefined) return null;
  if (!isPlainObject(metadata))
    throw invalid(`Expected metadata to be a dict or None, got ${JSON.stringify(metadata)}`);
  if (Object.keys(metadata).length === 0)
    throw invalid(`Expected metadata to be a non-empty dict, got {} at index ${index}`);
  for (const [key, value] of Object.entries(metadata)) {
    if (key.startsWith('chroma:'))
      throw invalid(`Expected metadata key not to start with "chroma:", got ${key}`);
    if (!(isScalar(value) || (allowNull && value === null))) {
      throw invalid(
        `Expected metadata value to be a str, int, float, bool or None, got ${JSON.stringify(value)} for key ${key}`,
      );
    }
  }
  return metadata as Record<string, Scalar | null>;
}

function checkInclude(include: unknown): string[] | undefined {
  if (include === undefined) return undefined;
  if (
    !Array.isArray(include) ||
    !include.every((item) => typeof item === 'string' && INCLUDE.includes(item))
  ) {
    throw fail(
      422,
      'UnprocessableEntity',
      `Failed to deserialize the JSON body into the target type: include: unknown variant in ${JSON.stringify(include)}`,
    );
  }
  return include as string[];
}

/** Starts the fake. `token` set: requests without a matching `x-chroma-token` header get 401. */
export async function startFakeChroma(
  options: {
    token?: string;
    /** Called before each request is handled (to simulate another client acting in between). */
    beforeRequest?: (request: RecordedRequest, tenants: Map<string, Map<string, ChromaDatabase>>) => void;
  } = {},
): Promise<FakeChroma> {
  const tenants = new Map<string, Map<string, ChromaDatabase>>();
  const collectionsById = new Map<string, ChromaCollection>();

  const getTenant = (name: string) => {
    const tenant = tenants.get(name);
    if (tenant === undefined) throw fail(404, 'NotFoundError', `Tenant [${name}] not found`);
    return tenant;
  };
  const getDatabase = (tenant: string, name: string) => {
    const database = getTenant(tenant).get(name);
    if (database === undefined) throw fail(404, 'NotFoundError', `Database [${name}] not found`);
    return database;
  };
  const getCollection = (tenant: string, database: string, id: string) => {
    const collection = collectionsById.get(id);
    if (collection === undefined || collection.tenant !== tenant || collection.database !== database) {
      throw fail(404, 'NotFoundError', `Collection [${id}] does not exist`);
    }
    return collection;
  };
  const describeCollection = (collection: ChromaCollection) => ({
    id: collection.id,
    name: collection.name,
    configuration_json: {
      hnsw: {
        space: collection.space,
        ef_construction: 100,
        ef_search: 100,
        max_neighbors: 16,
        resize_factor: 1.2,
        sync_threshold: 1000,
      },
      spann: null,
      embedding_function: null,
    },
    metadata: collection.metadata,
    dimension: collection.dimension,
    tenant: collection.tenant,
    database: collection.database,
    log_position: 0,
    version: 0,
  });
  const checkEmbeddings = (collection: ChromaCollection, embeddings: unknown, count: number): number[][] => {
    if (!Array.isArray(embeddings) || embeddings.length !== count) {
      throw invalid(
        `Unequal lengths for fields: ids: ${count}, embeddings: ${Array.isArray(embeddings) ? embeddings.length : 0}`,
      );
    }
    for (const embedding of embeddings) {
      if (!Array.isArray(embedding) || !embedding.every((value) => typeof value === 'number')) {
        throw fail(
          422,
          'UnprocessableEntity',
          'Failed to deserialize the JSON body into the target type: embeddings',
        );
      }
      const dimension = collection.dimension ?? embeddings[0].length;
      if (embedding.length !== dimension) {
        throw invalid(
          `Collection expecting embedding with dimension of ${dimension}, got ${embedding.length}`,
        );
      }
    }
    return embeddings as number[][];
  };
  const select = (collection: ChromaCollection, ids: unknown, where: unknown): ChromaRecord[] => {
    let records = [...collection.records.values()];
    if (ids !== undefined && ids !== null) {
      if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string'))
        throw invalid('Expected ids to be a list of strings');
      const wanted = new Set(ids);
      records = records.filter((record) => wanted.has(record.id));
    }
    if (where !== undefined && where !== null) {
      const predicate = compileWhere(where);
      records = records.filter(predicate);
    }
    return records;
  };

  const handle = (request: RecordedRequest) => {
    options.beforeRequest?.(request, tenants);
    if (options.token !== undefined && request.headers['x-chroma-token'] !== options.token) {
      throw fail(401, 'AuthError', 'Unauthorized');
    }
    const segments = request.path.split('/').filter(Boolean).map(decodeURIComponent);
    if (segments[0] !== 'api' || segments[1] !== 'v2' || segments[2] !== 'tenants') {
      throw fail(404, 'NotFound', `No route for ${request.method} ${request.path}`);
    }
    const [tenantName, dbSegment, databaseName, collectionsSegment, collectionId, action] = segments.slice(3);
    const body = request.body;
    const bodyObject = () => {
      if (!isPlainObject(body)) throw fail(400, 'InvalidArgumentError', 'Expected a JSON object body');
      return body;
    };

    if (tenantName === undefined) {
      if (request.method !== 'POST') throw fail(405, 'MethodNotAllowed', 'Method not allowed');
      const payload = bodyObject();
      checkFields(payload, ['name']);
      const name = checkName(payload.name, 'tenant');
      if (tenants.has(name)) throw fail(409, 'UniqueConstraintError', `Tenant ${name} already exists`);
      tenants.set(name, new Map());
      return ok({});
    }
    if (dbSegment === undefined) {
      if (request.method !== 'GET') throw fail(405, 'MethodNotAllowed', 'Method not allowed');
      getTenant(tenantName);
      return ok({ name: tenantName });
    }
    if (dbSegment !== 'databases') throw fail(404, 'NotFound', `No route for ${request.path}`);
    if (databaseName === undefined) {
      const tenant = getTenant(tenantName);
      if (request.method === 'GET') {
        return ok(
          [...tenant.values()].map((database) => ({
            id: database.id,
            name: database.name,
            tenant: tenantName,
          })),
        );
      }
      if (request.method !== 'POST') throw fail(405, 'MethodNotAllowed', 'Method not allowed');
      const payload = bodyObject();
      checkFields(payload, ['name']);
      const name = checkName(payload.name, 'database');
      if (tenant.has(name))
        throw fail(409, 'UniqueConstraintError', `Database ${name} already exists for tenant ${tenantName}`);
      tenant.set(name, { id: randomUUID(), name, tenant: tenantName, collections: new Map() });
      return ok({});
    }
    if (collectionsSegment === undefined) {
      const database = getDatabase(tenantName, databaseName);
      if (request.method === 'GET') return ok({ id: database.id, name: database.name, tenant: tenantName });
      if (request.method === 'DELETE') {
        for (const collection of database.collections.values()) collectionsById.delete(collection.id);
        getTenant(tenantName).delete(databaseName);
        return ok({});
      }
      throw fail(405, 'MethodNotAllowed', 'Method not allowed');
    }
    if (collectionsSegment !== 'collections') throw fail(404, 'NotFound', `No route for ${request.path}`);
    const database = getDatabase(tenantName, databaseName);
    if (collectionId === undefined) {
      if (request.method === 'GET') return ok([...database.collections.values()].map(describeCollection));
      if (request.method !== 'POST') throw fail(405, 'MethodNotAllowed', 'Method not allowed');
      const payload = bodyObject();
      checkFields(payload, ['name', 'configuration', 'metadata', 'get_or_create']);
      const name = checkName(payload.name, 'collection');
      let space: ChromaCollection['space'] = 'l2';
      if (payload.configuration !== undefined && payload.configuration !== null) {
        if (!isPlainObject(payload.configuration)) throw invalid('Expected configuration to be an object');
        checkFields(payload.configuration, ['hnsw', 'spann', 'embedding_function', 'schema']);
        const hnsw = payload.configuration.hnsw;
        if (hnsw !== undefined && hnsw !== null) {
          if (!isPlainObject(hnsw)) throw invalid('Expected hnsw configuration to be an object');
          checkFields(hnsw, [
            'space',
            'ef_construction',
            'ef_search',
            'max_neighbors',
            'resize_factor',
            'sync_threshold',
          ]);
          if (hnsw.space !== undefined) {
            if (!['l2', 'cosine', 'ip'].includes(hnsw.space as string)) {
              throw fail(
                422,
                'UnprocessableEntity',
                `unknown variant \`${String(hnsw.space)}\`, expected one of \`l2\`, \`cosine\`, \`ip\``,
              );
            }
            space = hnsw.space as ChromaCollection['space'];
          }
        }
      }
      if (payload.metadata !== undefined && payload.metadata !== null)
        checkMetadata(payload.metadata, 0, false);
      const existing = database.collections.get(name);
      if (existing !== undefined) {
        if (payload.get_or_create !== true)
          throw fail(409, 'UniqueConstraintError', `Collection [${name}] already exists`);
        return ok(describeCollection(existing));
      }
      const collection: ChromaCollection = {
        id: randomUUID(),
        name,
        tenant: tenantName,
        database: databaseName,
        space,
        dimension: null,
        metadata: (payload.metadata as Record<string, unknown> | undefined) ?? null,
        records: new Map(),
      };
      database.collections.set(name, collection);
      collectionsById.set(collection.id, collection);
      return ok(describeCollection(collection));
    }

    const collection = getCollection(tenantName, databaseName, collectionId);
    const route = `${request.method} ${action ?? ''}`;
    switch (route) {
      case 'GET count':
        return ok(collection.records.size);
      case 'POST upsert':
      case 'POST add': {
        const payload = bodyObject();
        checkFields(payload, ['ids', 'embeddings', 'metadatas', 'documents', 'uris']);
        const ids = payload.ids;
        if (
          !Array.isArray(ids) ||
          ids.length === 0 ||
          !ids.every((id) => typeof id === 'string' && id.length > 0)
        ) {
          throw invalid('Expected IDs to be a non-empty list of non-empty strings');
        }
        const duplicates = ids.filter((id, index) => ids.indexOf(id) !== index);
        if (duplicates.length > 0) {
          throw fail(
            400,
            'DuplicateIDError',
            `Expected IDs to be unique, found duplicates of: ${[...new Set(duplicates)].join(', ')}`,
          );
        }
        const embeddings = checkEmbeddings(collection, payload.embeddings, ids.length);
        const metadatas = payload.metadatas ?? null;
        if (metadatas !== null && (!Array.isArray(metadatas) || metadatas.length !== ids.length)) {
          throw invalid(
            `Unequal lengths for fields: ids: ${ids.length}, metadatas: ${Array.isArray(metadatas) ? metadatas.length : 0}`,
          );
        }
        const checked = ids.map((_, index) =>
          checkMetadata(metadatas === null ? null : (metadatas as unknown[])[index], index, true),
        );
        collection.dimension ??= embeddings[0]!.length;
        ids.forEach((id: string, index) => {
          const existing = collection.records.get(id);
          if (existing !== undefined && route === 'POST add') return;
          const update = checked[index];
          const merged: Record<string, Scalar> = { ...(existing?.metadata ?? {}) };
          for (const [key, value] of Object.entries(update ?? {})) {
            if (value === null) delete merged[key];
            else merged[key] = value;
          }
          collection.records.set(id, {
            id,
            embedding: [...embeddings[index]!],
            metadata: Object.keys(merged).length === 0 ? null : merged,
            document: existing?.document ?? null,
          });
        });
        return ok({});
      }
      case 'POST get': {
        const payload = bodyObject();
        checkFields(payload, ['ids', 'where', 'where_document', 'limit', 'offset', 'include']);
        const include = checkInclude(payload.include) ?? ['documents', 'metadatas'];
        let records = select(collection, payload.ids, payload.where);
        const offset = typeof payload.offset === 'number' ? payload.offset : 0;
        records = records.slice(
          offset,
          typeof payload.limit === 'number' ? offset + payload.limit : undefined,
        );
        return ok({
          ids: records.map((record) => record.id),
          metadatas: include.includes('metadatas') ? records.map((record) => record.metadata) : null,
          documents: include.includes('documents') ? records.map((record) => record.document) : null,
          embeddings: include.includes('embeddings') ? records.map((record) => record.embedding) : null,
          uris: null,
          include,
        });
      }
      case 'POST query': {
        const payload = bodyObject();
        checkFields(payload, ['ids', 'where', 'where_document', 'query_embeddings', 'n_results', 'include']);
        const include = checkInclude(payload.include) ?? ['documents', 'metadatas', 'distances'];
        const queries = payload.query_embeddings;
        if (!Array.isArray(queries) || queries.length === 0)
          throw invalid('Expected query_embeddings to be a non-empty list');
        const nResults = payload.n_results ?? 10;
        if (typeof nResults !== 'number' || !Number.isInteger(nResults) || nResults < 1) {
          throw invalid(`Expected n_results to be a positive integer, got ${JSON.stringify(nResults)}`);
        }
        const candidates = select(collection, payload.ids, payload.where);
        const results = queries.map((query: unknown) => {
          if (
            !Array.isArray(query) ||
            (collection.dimension !== null && query.length !== collection.dimension)
          ) {
            throw invalid(
              `Collection expecting embedding with dimension of ${collection.dimension}, got ${Array.isArray(query) ? query.length : 0}`,
            );
          }
          return candidates
            .map((record) => ({
              record,
              distance: distance(collection.space, query as number[], record.embedding),
            }))
            .sort((a, b) => a.distance - b.distance || a.record.id.localeCompare(b.record.id))
            .slice(0, nResults);
        });
        return ok({
          ids: results.map((rows) => rows.map((row) => row.record.id)),
          distances: include.includes('distances')
            ? results.map((rows) => rows.map((row) => row.distance))
            : null,
          metadatas: include.includes('metadatas')
            ? results.map((rows) => rows.map((row) => row.record.metadata))
            : null,
          documents: include.includes('documents')
            ? results.map((rows) => rows.map((row) => row.record.document))
            : null,
          embeddings: include.includes('embeddings')
            ? results.map((rows) => rows.map((row) => row.record.embedding))
            : null,
          uris: null,
          include,
        });
      }
      case 'POST delete': {
        const payload = bodyObject();
        checkFields(payload, ['ids', 'where', 'where_document']);
        if (
          (payload.ids === undefined || payload.ids === null) &&
          (payload.where === undefined || payload.where === null)
        ) {
          throw invalid('At least one of ids, where, or where_document must be provided in delete.');
        }
        for (const record of select(collection, payload.ids, payload.where))
          collection.records.delete(record.id);
        return ok({});
      }
      default:
        throw fail(404, 'NotFound', `No route for ${request.method} ${request.path}`);
    }
  };

  const server = await startFixtureServer(handle, (message) => ({
    status: 400,
    body: { error: 'InvalidArgumentError', message: `Failed to parse the request body as JSON: ${message}` },
  }));
  return { ...server, tenants };
}

function distance(space: ChromaCollection['space'], query: number[], embedding: number[]): number {
  if (space === 'cosine') return 1 - cosine(query, embedding);
  if (space === 'ip') return 1 - query.reduce((sum, value, index) => sum + value * embedding[index]!, 0);
  return query.reduce((sum, value, index) => sum + (value - embedding[index]!) ** 2, 0);
}
