import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { marketplaceExpress } from '../express.js';
import { marketplaceFastify } from '../fastify.js';
import { marketplaceHono } from '../hono.js';
import type { MarketplaceReceiver } from '../receiver.js';

/** An app listening on a real port. */
export interface BootedApp {
  url: string;
  close(): Promise<void>;
}

/** Boots one framework's app with the marketplace routes and one ordinary JSON route of the app. */
export type BootApp = (receiver: MarketplaceReceiver) => Promise<BootedApp>;

export const bootFastify: BootApp = async (receiver) => {
  const app = Fastify({ logger: false });
  await app.register(marketplaceFastify, { receiver });
  // The app's own routes keep Fastify's JSON parser (the marketplace's raw parser is scoped).
  app.post('/api/echo', async (request) => ({ echo: request.body }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${address.port}`, close: () => app.close() };
};

export const bootExpress: BootApp = async (receiver) => {
  const app = express();
  app.use(marketplaceExpress(receiver));
  app.use(express.json());
  app.post('/api/echo', (request, response) => {
    response.json({ echo: request.body });
  });
  const server = await new Promise<import('node:http').Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};

export const bootHono: BootApp = async (receiver) => {
  const app = new Hono();
  app.use('*', marketplaceHono(receiver));
  app.post('/api/echo', async (c) => c.json({ echo: await c.req.json() }));
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started));
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        (server as import('node:http').Server).closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
};

export const ADAPTERS: ReadonlyArray<readonly [string, BootApp]> = [
  ['fastify', bootFastify],
  ['express', bootExpress],
  ['hono', bootHono],
];
