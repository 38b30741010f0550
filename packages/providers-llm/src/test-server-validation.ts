/**
 * Test helper (not exported): what each vendor's API refuses, so the replaying test server answers
 * a malformed request the way the real API would (status and error body) instead of replaying
 * the fixture — a stand-in that accepts anything would hide wire-format bugs.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** A refusal: the vendor's status and error body. */
export interface Refusal {
  status: number;
  json: unknown;
}

interface Request {
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: unknown;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isString = (value: unknown): value is string => typeof value === 'string';
const isPositiveInteger = (value: unknown) => Number.isInteger(value) && (value as number) > 0;

const openAIError = (message: string): Refusal => ({
  status: 400,
  json: { error: { message, type: 'invalid_request_error', param: null, code: null } },
});
const anthropicError = (status: number, type: string, message: string): Refusal => ({
  status,
  json: { type: 'error', error: { type, message } },
});
const geminiError = (status: number, message: string): Refusal => ({
  status,
  json: {
    error: { code: status, message, status: status === 400 ? 'INVALID_ARGUMENT' : 'UNAUTHENTICATED' },
  },
});

function openAIChat(body: Record<string, unknown>): string | undefined {
  if (!isString(body.model)) return 'you must provide a model parameter';
  if (!Array.isArray(body.messages) || body.messages.length === 0)
    return "'messages' must contain at least 1 item";
  for (const message of body.messages) {
    if (
      !isObject(message) ||
      !['system', 'user', 'assistant', 'developer', 'tool'].includes(message.role as string)
    ) {
      return "Invalid value for 'role'";
    }
    if (!isString(message.content)) return "Invalid type for 'messages.content'";
  }
  if (body.max_tokens !== undefined && body.max_completion_tokens !== undefined) {
    return 'max_tokens and max_completion_tokens cannot both be set';
  }
  for (const key of ['max_tokens', 'max_completion_tokens'] as const) {
    if (body[key] !== undefined && !isPositiveInteger(body[key])) return `Invalid '${key}'`;
  }
  if (body.stream_options !== undefined) {
    if (body.stream !== true)
      return "The 'stream_options' parameter is only allowed when 'stream' is enabled.";
    if (!isObject(body.stream_options) || typeof body.stream_options.include_usage !== 'boolean') {
      return "Invalid 'stream_options.include_usage'";
    }
  }
  return undefined;
}

function anthropicMessages(request: Request, body: Record<string, unknown>): Refusal | undefined {
  if (!isString(request.headers['x-api-key'])) {
    return anthropicError(401, 'authentication_error', 'x-api-key header is required');
  }
  if (!isString(request.headers['anthropic-version'])) {
    return anthropicError(400, 'invalid_request_error', 'anthropic-version: header is required');
  }
  const invalid = (message: string) => anthropicError(400, 'invalid_request_error', message);
  if (!isString(body.model)) return invalid('model: Field required');
  if (!isPositiveInteger(body.max_tokens)) return invalid('max_tokens: Field required');
  if (body.system !== undefined && !isString(body.system))
    return invalid('system: Input should be a valid string');
  if (!Array.isArray(body.messages) || body.messages.length === 0)
    return invalid('messages: at least one message is required');
  for (const [index, message] of body.messages.entries()) {
    if (!isObject(message) || !['user', 'assistant'].includes(message.role as string)) {
      return invalid(`messages.${index}.role: Input should be 'user' or 'assistant'`);
    }
    if (!isString(message.content))
      return invalid(`messages.${index}.content: Input should be a valid string`);
  }
  return undefined;
}

function geminiContents(body: Record<string, unknown>): string | undefined {
  if (!Array.isArray(body.contents) || body.contents.length === 0)
    return '* GenerateContentRequest.contents: contents is not specified';
  for (const content of body.contents) {
    if (!isObject(content) || !['user', 'model'].includes(content.role as string)) {
      return 'Please use a valid role: user, model.';
    }
    if (
      !Array.isArray(content.parts) ||
      !content.parts.every((part) => isObject(part) && isString(part.text))
    ) {
      return '* GenerateContentRequest.contents.parts: contents.parts must not be empty.';
    }
  }
  return undefined;
}

/** The refusal the vendor of `request.path` would answer, or `undefined` when the request is valid. */
export function refuseMalformed(request: Request): Refusal | undefined {
  const path = request.path;
  const body = request.body;
  if (path.endsWith('/chat/completions')) {
    if (!isObject(body)) return openAIError('We could not parse the JSON body of your request.');
    const problem = openAIChat(body);
    return problem === undefined ? undefined : openAIError(problem);
  }
  if (path.endsWith('/embeddings')) {
    if (!isObject(body) || !isString(body.model)) return openAIError('you must provide a model parameter');
    if (!Array.isArray(body.input) || body.input.length === 0 || !body.input.every(isString)) {
      return openAIError("'$.input' is invalid.");
    }
    return undefined;
  }
  if (path.endsWith('/messages')) {
    if (!isObject(body)) return anthropicError(400, 'invalid_request_error', 'Invalid JSON body');
    return anthropicMessages(request, body);
  }
  const gemini = /\/models\/([^/:]+):(generateContent|streamGenerateContent|batchEmbedContents)$/.exec(path);
  if (gemini !== null) {
    if (!isString(request.headers['x-goog-api-key'])) {
      return geminiError(
        401,
        "Method doesn't allow unregistered callers. Please use API Key or other form of API consumer identity to call this API.",
      );
    }
    if (!isObject(body)) return geminiError(400, 'Invalid JSON payload received.');
    if (gemini[2] === 'batchEmbedContents') {
      if (!Array.isArray(body.requests) || body.requests.length === 0)
        return geminiError(400, '* BatchEmbedContentsRequest.requests: requests is not specified');
      for (const item of body.requests) {
        if (!isObject(item) || item.model !== `models/${gemini[1]}`) {
          return geminiError(
            400,
            `* BatchEmbedContentsRequest.requests.model: the model of each request must be models/${gemini[1]}`,
          );
        }
        if (!isObject(item.content) || !Array.isArray(item.content.parts))
          return geminiError(400, '* BatchEmbedContentsRequest.requests.content: content is not specified');
      }
      return undefined;
    }
    if (gemini[2] === 'streamGenerateContent' && request.query.get('alt') !== 'sse') {
      // Without alt=sse Gemini streams one JSON array, not server-sent events.
      return geminiError(400, 'this test server only speaks streamGenerateContent?alt=sse');
    }
    const problem = geminiContents(body);
    return problem === undefined ? undefined : geminiError(400, problem);
  }
  if (path.endsWith('/v2/rerank')) {
    const invalid = (message: string): Refusal => ({ status: 400, json: { id: 'test', message } });
    if (!isObject(body) || !isString(body.model)) return invalid('invalid request: model must be specified');
    if (!isString(body.query)) return invalid('invalid request: query must be a string');
    if (!Array.isArray(body.documents) || !body.documents.every(isString))
      return invalid('invalid request: documents must be a list of strings');
    if (body.top_n !== undefined && !isPositiveInteger(body.top_n))
      return invalid('invalid request: top_n must be positive');
    return undefined;
  }
  if (path.endsWith('/rerank')) {
    const invalid = (message: string): Refusal => ({
      status: 422,
      json: { error: message, error_type: 'Validation' },
    });
    if (!isObject(body) || !isString(body.query))
      return invalid('Failed to deserialize the JSON body: missing field `query`');
    if (!Array.isArray(body.texts) || body.texts.length === 0 || !body.texts.every(isString)) {
      return invalid('`texts` cannot be empty');
    }
    return undefined;
  }
  return undefined;
}
