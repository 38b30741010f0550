import type { MiddlewareHandler } from 'hono';
import type { MarketplaceReceiver, MarketplaceResponse } from './receiver.js';

function toResponse(result: MarketplaceResponse): Response {
  const headers = new Headers();
  for (const [name, value] of Object.entries(result.headers)) {
    if (typeof value === 'string') headers.set(name, value);
    else for (const item of value) headers.append(name, item);
  }
  return new Response(result.body === '' ? null : result.body, { status: result.status, headers });
}

/**
 * The marketplace routes as Hono middleware; the body is read raw from the request stream.
 *
 * @example
 * app.use('*', marketplaceHono(receiver));
 */
export function marketplaceHono(receiver: MarketplaceReceiver): MiddlewareHandler {
  return async (c, next) => {
    const url = new URL(c.req.url);
    if (!receiver.matches(url.pathname)) return next();
    const headers: Record<string, string> = {};
    c.req.raw.headers.forEach((value, name) => {
      headers[name] = value;
    });
    const stream = c.req.raw.body as unknown as AsyncIterable<Uint8Array> | null;
    return toResponse(
      await receiver.handle({
        method: c.req.method,
        path: url.pathname,
        query: url.search,
        headers,
        body: stream,
      }),
    );
  };
}
