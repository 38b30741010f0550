import { MtPaasError } from '@mt-paas/context';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { MarketplaceReceiver, MarketplaceResponse } from './receiver.js';

function send(response: Response, result: MarketplaceResponse) {
  response.status(result.status).set(result.headers).send(result.body);
}

/**
 * The marketplace routes as Express middleware. Mount it before any body parser
 * (`express.json()`): signatures are checked over the raw bytes, which a parser consumes.
 *
 * @example
 * app.use(marketplaceExpress(receiver)); // then app.use(express.json()), your routes …
 */
export function marketplaceExpress(receiver: MarketplaceReceiver): RequestHandler {
  return (request: Request, response: Response, next: NextFunction) => {
    const url = request.originalUrl ?? request.url;
    const queryIndex = url.indexOf('?');
    const path = queryIndex === -1 ? url : url.slice(0, queryIndex);
    if (!receiver.matches(path)) return next();
    if (request.readableEnded || (request as { _body?: unknown })._body === true) {
      send(
        response,
        receiver.errorResponse(
          path,
          new MtPaasError(
            'CONFIG_INVALID',
            'The body was already read by a parser; mount marketplaceExpress() before express.json().',
          ),
        ),
      );
      return;
    }
    receiver
      .handle({
        method: request.method,
        path,
        query: queryIndex === -1 ? '' : url.slice(queryIndex + 1),
        headers: request.headers,
        body: request,
      })
      .then(
        (result) => send(response, result),
        (error: unknown) => send(response, receiver.errorResponse(path, error)),
      );
  };
}
