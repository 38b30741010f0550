import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { MarketplaceReceiver, MarketplaceRequest, MarketplaceResponse } from './receiver.js';

/** Options of {@link marketplaceFastify}. */
export interface MarketplaceFastifyOptions {
  receiver: MarketplaceReceiver;
}

/**
 * The route policy `@mt-paas/middleware` reads from `config.mtPaas`: the marketplace's routes carry
 * no tenant of their own and authenticate themselves, so the tenant pipeline lets them through.
 */
const PIPELINE_POLICY = {
  tenant: 'host-only',
  auth: 'none',
  rateLimit: false,
  quota: false,
  bodyGuard: false,
};

function send(reply: FastifyReply, response: MarketplaceResponse) {
  return reply.code(response.status).headers(response.headers).send(response.body);
}

function toRequest(request: FastifyRequest): MarketplaceRequest {
  const url = request.raw.url ?? request.url;
  const queryIndex = url.indexOf('?');
  const body = request.body as MarketplaceRequest['body'];
  return {
    method: request.method,
    path: queryIndex === -1 ? url : url.slice(0, queryIndex),
    query: queryIndex === -1 ? '' : url.slice(queryIndex + 1),
    headers: request.headers,
    // No parser ran (no body, or no content-type): read the request stream itself.
    body: body === undefined ? request.raw : body,
  };
}

/**
 * The marketplace routes as a Fastify plugin (register it without `fastify-plugin`: its
 * content-type parser, which hands the raw body bytes to the core, stays inside its scope).
 *
 * @example
 * await app.register(marketplaceFastify, { receiver });
 */
export const marketplaceFastify: FastifyPluginAsync<MarketplaceFastifyOptions> = async (app, options) => {
  const { receiver } = options;
  app.removeAllContentTypeParsers();
  // Every content type: the raw stream, read (with the size limit) by the core.
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
  app.setErrorHandler((error, request, reply) => {
    const url = request.raw.url ?? request.url;
    const queryIndex = url.indexOf('?');
    return send(reply, receiver.errorResponse(queryIndex === -1 ? url : url.slice(0, queryIndex), error));
  });
  for (const route of receiver.routes) {
    app.route({
      method: [route.method, route.method === 'GET' ? 'POST' : 'GET'],
      url: route.path,
      config: { mtPaas: PIPELINE_POLICY } as Record<string, unknown>,
      handler: async (request, reply) => send(reply, await receiver.handle(toRequest(request))),
    });
  }
};
