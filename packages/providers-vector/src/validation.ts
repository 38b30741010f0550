import { MtPaasError } from '@mt-paas/context';
import type {
  NormalizedCondition,
  NormalizedDeleteRequest,
  NormalizedFilter,
  NormalizedQuery,
  NormalizedRecord,
  VectorDeleteRequest,
  VectorFilter,
  VectorMetadata,
  VectorMetadataValue,
  VectorQuery,
  VectorRecord,
} from './types.js';

/** Metadata keys every store accepts (safe as a JSON key, a Qdrant payload path and a Chroma key). */
export const METADATA_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Longest record id accepted. */
export const MAX_ID_LENGTH = 512;

/** Largest `topK` accepted. */
export const MAX_TOP_K = 1000;

function invalid(message: string, details?: Record<string, unknown>): MtPaasError {
  return new MtPaasError('INVALID_REQUEST', message, details === undefined ? {} : { details });
}

function valueType(value: unknown): NormalizedCondition['type'] | undefined {
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number' && Number.isFinite(value)) return 'number';
  return undefined;
}

/** Throws `INVALID_REQUEST` unless `vector` has `dimensions` finite numbers, not all zero. */
export function validateVector(vector: unknown, dimensions: number, what: string): readonly number[] {
  if (!Array.isArray(vector)) throw invalid(`${what} must be an array of ${dimensions} numbers.`);
  if (vector.length !== dimensions) {
    throw invalid(
      `${what} has ${vector.length} dimensions but this store holds ${dimensions}; embed with the model the store was created for.`,
      { expected: dimensions, received: vector.length },
    );
  }
  let norm = 0;
  for (const component of vector) {
    if (typeof component !== 'number' || !Number.isFinite(component)) {
      throw invalid(`${what} contains a value that is not a finite number.`);
    }
    norm += component * component;
  }
  if (norm === 0) throw invalid(`${what} is all zeros; cosine similarity is undefined for it.`);
  return vector as readonly number[];
}

function validateId(id: unknown, what: string): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) {
    throw invalid(`${what} must be a non-empty string of at most ${MAX_ID_LENGTH} characters.`);
  }
  return id;
}

function validateKey(key: string): void {
  if (!METADATA_KEY_PATTERN.test(key)) {
    throw invalid(
      `Metadata key "${key}" is not allowed; use letters, digits and "_" (not starting with a digit, at most 64 characters).`,
      { key },
    );
  }
}

/** Validates metadata (flat, scalar values, keys matching {@link METADATA_KEY_PATTERN}). */
export function validateMetadata(metadata: unknown): VectorMetadata {
  if (metadata === undefined) return {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw invalid('Record metadata must be a plain object of string, number or boolean values.');
  }
  const result: VectorMetadata = {};
  for (const [key, value] of Object.entries(metadata)) {
    validateKey(key);
    if (valueType(value) === undefined) {
      throw invalid(
        `Metadata "${key}" must be a string, a finite number or a boolean (nested values and null are not stored).`,
        { key },
      );
    }
    result[key] = value as VectorMetadataValue;
  }
  return result;
}

/** Validates records and keeps the last record of each id (in first-seen order). */
export function normalizeRecords(records: unknown, dimensions: number): NormalizedRecord[] {
  if (!Array.isArray(records)) throw invalid('upsert() takes an array of records.');
  const byId = new Map<string, NormalizedRecord>();
  records.forEach((record: VectorRecord, index) => {
    if (typeof record !== 'object' || record === null) throw invalid(`Record ${index} is not an object.`);
    const id = validateId(record.id, `Record ${index} id`);
    const vector = validateVector(record.vector, dimensions, `Record "${id}" vector`);
    byId.set(id, { id, vector: [...vector], metadata: validateMetadata(record.metadata) });
  });
  return [...byId.values()];
}

function normalizeCondition(key: string, condition: unknown): NormalizedCondition {
  validateKey(key);
  const type = valueType(condition);
  if (type !== undefined) return { key, values: [condition as VectorMetadataValue], type };
  if (typeof condition === 'object' && condition !== null && !Array.isArray(condition)) {
    const operators = Object.keys(condition);
    if (operators.length === 1 && operators[0] === '$eq') {
      const value = (condition as { $eq: unknown }).$eq;
      const eqType = valueType(value);
      if (eqType === undefined) throw invalid(`Filter "${key}": $eq takes a string, number or boolean.`);
      return { key, values: [value as VectorMetadataValue], type: eqType };
    }
    if (operators.length === 1 && operators[0] === '$in') {
      const values = (condition as { $in: unknown }).$in;
      if (!Array.isArray(values) || values.length === 0) {
        throw invalid(`Filter "${key}": $in takes a non-empty array of values.`);
      }
      const types = new Set(values.map(valueType));
      const inType = [...types][0];
      if (types.size !== 1 || inType === undefined) {
        throw invalid(`Filter "${key}": $in values must all be strings, all numbers or all booleans.`);
      }
      return { key, values: [...new Set(values as VectorMetadataValue[])], type: inType };
    }
  }
  throw invalid(
    `Filter "${key}" is not supported; use a value (equality), { $eq: value } or { $in: [values] }.`,
    { key },
  );
}

/** Validates a filter into ANDed conditions. */
export function normalizeFilter(filter: unknown): NormalizedFilter {
  if (filter === undefined) return [];
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) {
    throw invalid(
      'A filter is an object of metadata conditions, e.g. { lang: "ko", year: { $in: [2024, 2025] } }.',
    );
  }
  return Object.entries(filter as VectorFilter).map(([key, condition]) => normalizeCondition(key, condition));
}

/** Validates a query. */
export function normalizeQuery(query: VectorQuery, dimensions: number): NormalizedQuery {
  if (typeof query !== 'object' || query === null) throw invalid('query() takes { vector, topK?, filter? }.');
  const topK = query.topK ?? 10;
  if (!Number.isInteger(topK) || topK < 1 || topK > MAX_TOP_K) {
    throw invalid(`topK must be an integer from 1 to ${MAX_TOP_K}.`, { topK });
  }
  return {
    vector: [...validateVector(query.vector, dimensions, 'Query vector')],
    topK,
    filter: normalizeFilter(query.filter),
  };
}

/** Validates a delete request (ids and/or filter; a request selecting everything is refused). */
export function normalizeDelete(request: VectorDeleteRequest): NormalizedDeleteRequest {
  if (typeof request !== 'object' || request === null) throw invalid('delete() takes { ids?, filter? }.');
  const ids =
    request.ids === undefined
      ? undefined
      : Array.isArray(request.ids)
        ? [...new Set(request.ids.map((id, index) => validateId(id, `Id ${index}`)))]
        : (() => {
            throw invalid('delete() ids must be an array of strings.');
          })();
  const filter = normalizeFilter(request.filter);
  if (ids === undefined && filter.length === 0) {
    throw invalid(
      "delete() needs ids and/or a non-empty filter; to remove all of a tenant's vectors call purgeTenant().",
    );
  }
  return { ids, filter };
}

/** True when `metadata` satisfies every condition (type-strict equality). */
export function matchesFilter(metadata: VectorMetadata, filter: NormalizedFilter): boolean {
  return filter.every((condition) => {
    if (!Object.hasOwn(metadata, condition.key)) return false;
    const value = metadata[condition.key];
    return condition.values.some((candidate) => candidate === value);
  });
}

/** Cosine similarity of two non-zero vectors of equal length. */
export function cosineSimilarity(left: readonly number[], right: readonly number[]): number {
  let dot = 0;
  let leftNorm = 0;
  let rightNorm = 0;
  for (let index = 0; index < left.length; index++) {
    const a = left[index]!;
    const b = right[index]!;
    dot += a * b;
    leftNorm += a * a;
    rightNorm += b * b;
  }
  return dot / (Math.sqrt(leftNorm) * Math.sqrt(rightNorm));
}

/** Throws `CONFIG_INVALID` unless `dimensions` is an integer from 1 to 16000. */
export function checkDimensions(dimensions: unknown): number {
  if (
    typeof dimensions !== 'number' ||
    !Number.isInteger(dimensions) ||
    dimensions < 1 ||
    dimensions > 16_000
  ) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'Vector store "dimensions" must be an integer from 1 to 16000: the length of the embedding model\'s vectors.',
      { details: { dimensions } },
    );
  }
  return dimensions;
}

/**
 * A name fragment safe in SQL identifiers and Qdrant/Chroma collection names: lower case,
 * `[a-z0-9_]`, runs of anything else collapsed to `_`.
 */
export function sanitizeName(name: string): string {
  const cleaned = name
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return cleaned.length === 0 ? 'default' : cleaned;
}
