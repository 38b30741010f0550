import type { AddressInfo } from 'node:net';
import { send } from '@mt-paas/test-env/http-client';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { noopHandlers } from './__fixtures__/handlers.js';
import { marketplaceExpress } from './express.js';
import { createMarketplaceReceiver } from './receiver.js';

const receiver = createMarketplaceReceiver({
  serviceId: 'keli_tutor',
  legacySecret: 'webhook_secret_12345',
  handlers: noopHandlers(),
});

describe('express adapter misuse', () => {
  it('says to mount it before express.json() when the body was already parsed', async () => {
    const app = express();
    app.use(express.json());
    app.use(marketplaceExpress(receiver));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const response = await send(url, {
        method: 'POST',
        path: '/api/tenant/webhook/service-cancelled',
        body: { application_id: 1 },
        headers: { 'x-webhook-secret': 'webhook_secret_12345' },
      });
      expect(response.status).toBe(500);
      expect(response.json.detail).toMatch(/before express\.json\(\)/);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
