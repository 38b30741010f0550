/**
 * A local stand-in for Qdrant's REST API (v1.x): the routes, request validation, status codes and
 * JSON envelopes (`{ result, status: "ok", time }`, errors `{ status: { error }, time }`) of the
 * endpoints the store uses, over an exact in-memory index (cosine = dot product of vectors
 * normalised on insert, as Qdrant does).
 */
import {
  cosine,
  HttpFailure,
  isPlainObject,
  type RecordedRequest,
  startFixtureServer,
} from './http-fixture.js';

type Payload = Record<string, unknown>;
interface Point {
  id: string | number;
  vector: number[];
  payload: Payload;
  version: number;
}
export interface Collection {
  size: number;
  distance: 'Cosine' | 'Euclid' | 'Dot' | 'Manhattan';
  points: Map<string, Point>;
  payloadSchema: Record<string, { data_type: string; params: Record<string, unknown>; points: number }>;
  hnswConfig?: Record<string, unknown>;
}

export interface FakeQdrant {
  url: string;
  requests: RecordedRequest[];
  collections: Map<string, Collection>;
  close(): Promise<void>;
}

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const COLLECTION_NAME = /^[^/\\\0]{1,255}$/;

const ok = (result: unknown) => ({ status: 200, body: { result, status: 'ok', time: 0.000_1 } });
const fail = (status: number, error: string) => new HttpFailure(status, { status: { error }, time: 0.000_1 });
const formatError = (message: string) => fail(400, `Format error in JSON body: ${message}`);
const wrongInput = (message: string) => fail(400, `Wrong input: ${message}`);

function pointKey(id: unknown): string {
  if (typeof id === 'number' && Number.isInteger(id) && id >= 0) return `n:${id}`;
  if (typeof id === 'string' && UUID.test(id)) return `u:${id.replaceAll('-', '').toLowerCase()}`;
  throw formatError(
    `value ${JSON.stringify(id)} is not a valid point ID, valid values are either an unsigned integer or a UUID`,
  );
}

function checkFields(body: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) {
      throw formatError(
        `unknown field \`${key}\` in ${what}, expected one of ${allowed.map((k) => `\`${k}\``).join(', ')}`,
      );
    }
  }
}

function valuesAt(payload: Payload, key: string): unknown[] {
  let current: unknown[] = [payload];
  for (const part of key.split('.')) {
    const next: unknown[] = [];
    for (const value of current) {
      if (!isPlainObject(value) || !(part in value)) continue;
      const child = value[part];
      if (Array.isArray(child)) next.push(...child);
      else next.push(child);
    }
    current = next;
  }
  return current;
}

const isKeywordOrInteger = (value: unknown) =>
  typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value));

type Predicate = (point: Point) => boolean;

function compileMatch(key: string, match: unknown): Predicate {
  if (!isPlainObject(match)) throw formatError('data did not match any variant of untagged enum Match');
  const keys = Object.keys(match);
  if (keys.length === 1 && keys[0] === 'value') {
    const expected = match.value;
    if (!(typeof expected === 'boolean' || isKeywordOrInteger(expected))) {
      throw formatError('data did not match any variant of untagged enum Match');
    }
    return (point) => valuesAt(point.payload, key).some((value) => value === expected);
  }
  if (keys.length === 1 && (keys[0] === 'any' || keys[0] === 'except')) {
    const list = match[keys[0]];
    const valid =
      Array.isArray(list) &&
      (list.every((value) => typeof value === 'string') ||
        list.every((value) => typeof value === 'number' && Number.isInteger(value)));
    if (!valid) throw formatError('data did not match any variant of untagged enum Match');
    const set = new Set(list as unknown[]);
    return keys[0] === 'any'
      ? (point) => valuesAt(point.payload, key).some((value) => set.has(value))
      : (point) => valuesAt(point.payload, key).every((value) => !set.has(value));
  }
  throw formatError('data did not match any variant of untagged enum Match');
}

function compileRange(key: string, range: unknown): Predicate {
  if (!isPlainObject(range)) throw formatError('invalid type: expected struct Range');
  checkFields(range, ['gt', 'gte', 'lt', 'lte'], 'Range');
  for (const bound of Object.values(range)) {
    if (bound !== null && (typeof bound !== 'number' || !Number.isFinite(bound))) {
      throw formatError('invalid type: expected f64 in Range');
    }
  }
  const { gt, gte, lt, lte } = range as Record<string, number | null | undefined>;
  return (point) =>
    valuesAt(point.payload, key).some(
      (value) =>
        typeof value === 'number' &&
        (gt == null || value > gt) &&
        (gte == null || value >= gte) &&
        (lt == null || value < lt) &&
        (lte == null || value <= lte),
    );
}

function compileCondition(condition: unknown): Predicate {
  if (!isPlainObject(condition))
    throw formatError('data did not match any variant of untagged enum Condition');
  if ('has_id' in condition) {
    checkFields(condition, ['has_id'], 'HasIdCondition');
    if (!Array.isArray(condition.has_id)) throw formatError('invalid type: expected a sequence for `has_id`');
    const ids = new Set(condition.has_id.map(pointKey));
    return (point) => ids.has(pointKey(point.id));
  }
  if ('key' in condition) {
    checkFields(condition, ['key', 'match', 'range'], 'FieldCondition');
    if (typeof condition.key !== 'string' || condition.key.length === 0) {
      throw formatError('invalid type: expected a string for `key`');
    }
    const predicates: Predicate[] = [];
    if (condition.match !== undefined) predicates.push(compileMatch(condition.key, condition.match));
    if (condition.range !== undefined) predicates.push(compileRange(condition.key, condition.range));
    if (predicates.length === 0) {
      throw wrongInput(`At least one field condition must be specified for key ${condition.key}`);
    }
    return (point) => predicates.every((predicate) => predicate(point));
  }
  if ('must' in condition || 'should' in condition || 'must_not' in condition)
    return compileFilter(condition);
  throw formatError('data did not match any variant of untagged enum Condition');
}

function clauses(value: unknown): Predicate[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map(compileCondition);
}

function compileFilter(filter: unknown): Predicate {
  if (filter === undefined || filter === null) return () => true;
  if (!isPlainObject(filter)) throw formatError('invalid type: expected struct Filter');
  checkFields(filter, ['must', 'should', 'must_not', 'min_should'], 'Filter');
  const must = clauses(filter.must);
  const should = clauses(filter.should);
  const mustNot = clauses(filter.must_not);
  return (point) =>
    must.every((predicate) => predicate(point)) &&
    (should.length === 0 || should.some((predicate) => predicate(point))) &&
    !mustNot.some((predicate) => predicate(point));
}

function normalise(vector: number[]): number[] {
  const norm = Math.sqrt(vector.reduce((sum, component) => sum + component * component, 0));
  return norm === 0 ? vector : vector.map((component) => component / norm);
}

function checkVector(value: unknown, collection: Collection): number[] {
  if (!Array.isArray(value) || !value.every((component) => typeof component === 'number')) {
    throw formatError('data did not match any variant of untagged enum VectorStruct');
  }
  if (value.length !== collection.size) {
    throw wrongInput(`Vector dimension error: expected dim: ${collection.size}, got ${value.length}`);
  }
  return value as number[];
}

/**
 * Starts the fake. `apiKey` set: requests without a matching `api-key` header get 401.
 * `ignoreQueryFilter` simulates a broken server that answers queries from every point.
 */
export async function startFakeQdrant(
  options: {
    apiKey?: string;
    ignoreQueryFilter?: boolean;
    /** Called before each request is handled (to simulate another client acting in between). */
    beforeRequest?: (request: RecordedRequest, collections: Map<string, Collection>) => void;
  } = {},
): Promise<FakeQdrant> {
  const collections = new Map<string, Collection>();
  let operationId = 0;
  const updateResult = () => ok({ operation_id: ++operationId, status: 'completed' });

  const getCollection = (name: string): Collection => {
    const collection = collections.get(name);
    if (collection === undefined) throw fail(404, `Not found: Collection \`${name}\` doesn't exist!`);
    return collection;
  };

  const handle = (request: RecordedRequest) => {
    options.beforeRequest?.(request, collections);
    if (options.apiKey !== undefined && request.headers['api-key'] !== options.apiKey) {
      return { status: 401, body: 'Must provide an API key or an Authorization bearer token' };
    }
    const segments = request.path.split('/').filter(Boolean).map(decodeURIComponent);
    if (segments[0] !== 'collections' || segments[1] === undefined) {
      throw fail(404, `Not found: ${request.path}`);
    }
    const name = segments[1];
    const route = `${request.method} ${segments.slice(2).join('/')}`;
    const body = request.body;

    switch (route) {
      case 'GET ': {
        const collection = getCollection(name);
        return ok({
          status: 'green',
          optimizer_status: 'ok',
          indexed_vectors_count: 0,
          points_count: collection.points.size,
          segments_count: 1,
          config: {
            params: {
              vectors: { size: collection.size, distance: collection.distance },
              shard_number: 1,
              replication_factor: 1,
            },
            hnsw_config: collection.hnswConfig ?? { m: 16, ef_construct: 100, full_scan_threshold: 10000 },
            optimizer_config: {},
            wal_config: {},
          },
          payload_schema: collection.payloadSchema,
        });
      }
      case 'PUT ': {
        if (!COLLECTION_NAME.test(name)) throw wrongInput(`Collection name \`${name}\` is not valid`);
        if (!isPlainObject(body)) throw formatError('EOF while parsing a value');
        checkFields(
          body,
          [
            'vectors',
            'shard_number',
            'sharding_method',
            'replication_factor',
            'write_consistency_factor',
            'on_disk_payload',
            'hnsw_config',
            'wal_config',
            'optimizers_config',
            'quantization_config',
            'sparse_vectors',
            'strict_mode_config',
            'init_from',
          ],
          'CreateCollection',
        );
        if (body.hnsw_config !== undefined) {
          if (!isPlainObject(body.hnsw_config))
            throw formatError('invalid type: expected struct HnswConfigDiff');
          checkFields(
            body.hnsw_config,
            ['m', 'ef_construct', 'full_scan_threshold', 'max_indexing_threads', 'on_disk', 'payload_m'],
            'HnswConfigDiff',
          );
          for (const value of Object.values(body.hnsw_config)) {
            if (
              typeof value !== 'boolean' &&
              (typeof value !== 'number' || !Number.isInteger(value) || value < 0)
            ) {
              throw formatError('invalid value: expected u64 in HnswConfigDiff');
            }
          }
        }
        const vectors = body.vectors;
        if (!isPlainObject(vectors) || typeof vectors.size !== 'number' || !Number.isInteger(vectors.size)) {
          throw formatError('missing field `size` in vectors');
        }
        if (vectors.size < 1 || vectors.size > 65536)
          throw wrongInput(
            'Validation error in JSON body: [vectors.size: value 0 invalid, must be from 1 to 65536]',
          );
        if (!['Cosine', 'Euclid', 'Dot', 'Manhattan'].includes(vectors.distance as string)) {
          throw formatError(
            `unknown variant \`${String(vectors.distance)}\`, expected one of \`Cosine\`, \`Euclid\`, \`Dot\`, \`Manhattan\``,
          );
        }
        if (collections.has(name)) throw fail(409, `Wrong input: Collection \`${name}\` already exists!`);
        collections.set(name, {
          size: vectors.size,
          distance: vectors.distance as Collection['distance'],
          points: new Map(),
          payloadSchema: {},
          hnswConfig: {
            m: 16,
            ef_construct: 100,
            full_scan_threshold: 10000,
            ...(body.hnsw_config as object | undefined),
          },
        });
        return ok(true);
      }
      case 'DELETE ':
        return ok(collections.delete(name));
      case 'PUT index': {
        const collection = getCollection(name);
        if (!isPlainObject(body) || typeof body.field_name !== 'string')
          throw formatError('missing field `field_name`');
        checkFields(body, ['field_name', 'field_schema'], 'CreateFieldIndex');
        const schema = body.field_schema;
        const type = typeof schema === 'string' ? schema : isPlainObject(schema) ? schema.type : undefined;
        const types = ['keyword', 'integer', 'float', 'geo', 'text', 'bool', 'datetime', 'uuid'];
        if (typeof type !== 'string' || !types.includes(type)) {
          throw formatError('data did not match any variant of untagged enum PayloadFieldSchema');
        }
        if (isPlainObject(schema)) {
          const allowed: Record<string, string[]> = {
            keyword: ['type', 'is_tenant', 'on_disk'],
            integer: ['type', 'lookup', 'range', 'is_principal', 'on_disk'],
            uuid: ['type', 'is_tenant', 'on_disk'],
          };
          checkFields(schema, allowed[type] ?? ['type', 'on_disk'], `${type} index params`);
        }
        collection.payloadSchema[body.field_name] = {
          data_type: type,
          params: isPlainObject(schema) ? schema : { type },
          points: collection.points.size,
        };
        return updateResult();
      }
      case 'PUT points': {
        const collection = getCollection(name);
        if (!isPlainObject(body) || !Array.isArray(body.points)) {
          throw formatError('data did not match any variant of untagged enum PointInsertOperations');
        }
        checkFields(body, ['points', 'shard_key'], 'PointsList');
        const prepared = body.points.map((point: unknown) => {
          if (!isPlainObject(point)) throw formatError('invalid type: expected struct PointStruct');
          checkFields(point, ['id', 'vector', 'payload'], 'PointStruct');
          const key = pointKey(point.id);
          const vector = checkVector(point.vector, collection);
          if (point.payload !== undefined && point.payload !== null && !isPlainObject(point.payload)) {
            throw formatError('invalid type: expected a map for `payload`');
          }
          return { key, id: point.id as string | number, vector, payload: (point.payload ?? {}) as Payload };
        });
        for (const point of prepared) {
          collection.points.set(point.key, {
            id: point.id,
            vector: collection.distance === 'Cosine' ? normalise(point.vector) : point.vector,
            payload: structuredClone(point.payload),
            version: operationId + 1,
          });
        }
        return updateResult();
      }
      case 'POST points/query': {
        const collection = getCollection(name);
        if (!isPlainObject(body)) throw formatError('EOF while parsing a value');
        checkFields(
          body,
          [
            'query',
            'filter',
            'limit',
            'offset',
            'with_payload',
            'with_vector',
            'score_threshold',
            'using',
            'params',
            'prefetch',
            'lookup_from',
            'shard_key',
          ],
          'QueryRequest',
        );
        const rawQuery = isPlainObject(body.query) ? body.query.nearest : body.query;
        const query = checkVector(rawQuery, collection);
        const limit = body.limit ?? 10;
        if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1) {
          throw wrongInput('Validation error in JSON body: [limit: value 0 invalid, must be 1.0 or larger]');
        }
        const compiled = compileFilter(body.filter);
        const filter = options.ignoreQueryFilter ? () => true : compiled;
        // Qdrant's query API leaves the payload out unless asked for (`with_payload` defaults to false).
        const includePayload =
          body.with_payload === true || Array.isArray(body.with_payload) || isPlainObject(body.with_payload);
        const scored = [...collection.points.values()]
          .filter(filter)
          .map((point) => ({ point, score: cosine(query, point.vector) }))
          .sort((a, b) => b.score - a.score || String(a.point.id).localeCompare(String(b.point.id)))
          .slice(0, limit);
        return ok({
          points: scored.map(({ point, score }) => ({
            id: point.id,
            version: point.version,
            score,
            ...(includePayload ? { payload: structuredClone(point.payload) } : {}),
          })),
        });
      }
      case 'POST points/delete': {
        const collection = getCollection(name);
        if (!isPlainObject(body)) throw formatError('EOF while parsing a value');
        checkFields(body, ['points', 'filter', 'shard_key'], 'PointsSelector');
        const hasPoints = body.points !== undefined;
        const hasFilter = body.filter !== undefined;
        if (hasPoints === hasFilter) {
          throw formatError('data did not match any variant of untagged enum PointsSelector');
        }
        if (hasPoints) {
          if (!Array.isArray(body.points))
            throw formatError('invalid type: expected a sequence for `points`');
          for (const key of body.points.map(pointKey)) collection.points.delete(key);
        } else {
          const filter = compileFilter(body.filter);
          for (const [key, point] of collection.points) if (filter(point)) collection.points.delete(key);
        }
        return updateResult();
      }
      case 'POST points/count': {
        const collection = getCollection(name);
        const countBody = body ?? {};
        if (!isPlainObject(countBody)) throw formatError('invalid type: expected struct CountRequest');
        checkFields(countBody, ['filter', 'exact', 'shard_key'], 'CountRequest');
        const filter = compileFilter(countBody.filter);
        return ok({ count: [...collection.points.values()].filter(filter).length });
      }
      default:
        throw fail(404, `Not found: ${request.method} ${request.path}`);
    }
  };

  const server = await startFixtureServer(handle, (message) => ({
    status: 400,
    body: { status: { error: `Format error in JSON body: ${message}` }, time: 0 },
  }));
  return { ...server, collections };
}
