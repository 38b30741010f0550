import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import xapiValidation from 'xapi-validation';

type Validate = (statement: unknown) => Array<{ path: unknown; constructor: { name: string } }>;
/** `xapi-validation` is CommonJS with `exports.default`: Node's ESM import gives the module object. */
const moduleValue = xapiValidation as unknown as Validate | { default: Validate };
export const validateStatement: Validate =
  typeof moduleValue === 'function' ? moduleValue : moduleValue.default;

/** One refusal by the stand-in, with the rule the statement broke. */
export interface LrsRefusal {
  status: number;
  reason: string;
}

/**
 * A local LRS stand-in: `POST <endpoint>/statements` as the xAPI 1.0.3 spec describes it (version
 * header, basic auth, a statement or an array), each statement checked by `xapi-validation` (Learning
 * Locker's validator, the rules a real LRS applies). Answers 200 with the ids, like an LRS.
 */
export interface LrsStandIn {
  endpoint: string;
  statements: Record<string, unknown>[];
  requests: Array<{ headers: IncomingMessage['headers']; count: number }>;
  refusals: LrsRefusal[];
  /** Answer the next N requests with 503. */
  failNext: number;
  close(): Promise<void>;
}

export async function startLrsStandIn(credentials: {
  username: string;
  password: string;
}): Promise<LrsStandIn> {
  const expectedAuth = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
  const state: LrsStandIn = {
    endpoint: '',
    statements: [],
    requests: [],
    refusals: [],
    failNext: 0,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const refuse = (response: import('node:http').ServerResponse, status: number, reason: string) => {
    state.refusals.push({ status, reason });
    response
      .writeHead(status, { 'content-type': 'application/json' })
      .end(JSON.stringify({ message: reason }));
  };
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (request.method !== 'POST' || request.url !== '/xapi/statements')
        return refuse(response, 404, 'not found');
      if (request.headers['x-experience-api-version'] !== '1.0.3') {
        return refuse(response, 400, 'X-Experience-API-Version 1.0.3 header missing');
      }
      if (request.headers.authorization !== expectedAuth) return refuse(response, 401, 'bad credentials');
      if (!String(request.headers['content-type']).startsWith('application/json')) {
        return refuse(response, 400, 'content-type must be application/json');
      }
      if (state.failNext > 0) {
        state.failNext -= 1;
        response.writeHead(503).end();
        return;
      }
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return refuse(response, 400, 'body is not JSON');
      }
      const statements = (Array.isArray(body) ? body : [body]) as Record<string, unknown>[];
      for (const statement of statements) {
        const warnings = validateStatement(statement);
        if (warnings.length > 0) {
          return refuse(
            response,
            400,
            warnings
              .map((warning) => `${warning.constructor.name} at ${JSON.stringify(warning.path)}`)
              .join('; '),
          );
        }
      }
      state.requests.push({ headers: request.headers, count: statements.length });
      state.statements.push(...statements);
      response
        .writeHead(200, { 'content-type': 'application/json', 'x-experience-api-version': '1.0.3' })
        .end(JSON.stringify(statements.map((statement) => statement.id)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/xapi`;
  return state;
}
