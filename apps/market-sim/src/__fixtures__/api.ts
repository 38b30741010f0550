import type { MarketServer } from '../server.js';

/** An answer of the simulator's API. */
export interface ApiAnswer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: tests read answers loosely
  body: any;
  headers: Record<string, unknown>;
}

/** Calls the simulator in process (`inject`). */
export async function api(
  sim: Pick<MarketServer, 'app'>,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  payload?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiAnswer> {
  const response = await sim.app.inject({
    method,
    url,
    headers,
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });
  const text = response.body;
  return {
    status: response.statusCode,
    body: text === '' ? undefined : JSON.parse(text),
    headers: response.headers as Record<string, unknown>,
  };
}

/** Registers a service, an institution, a member and their application; returns the ids. */
export async function seedApplication(
  sim: Pick<MarketServer, 'app'>,
  options: {
    serviceId: string;
    baseUrl: string;
    protocol: 'signed' | 'legacy';
    tenantId: string;
    service?: Record<string, unknown>;
    kind?: 'demo' | 'service';
    application?: Record<string, unknown>;
  },
) {
  const service = await api(sim, 'POST', '/sim/v1/services', {
    id: options.serviceId,
    base_url: options.baseUrl,
    protocol: options.protocol,
    ...options.service,
  });
  if (service.status !== 201) throw new Error(`service: ${JSON.stringify(service.body)}`);
  await api(sim, 'POST', '/sim/v1/institutions', {
    id: options.tenantId,
    name: `${options.tenantId} University`,
  });
  const user = await api(sim, 'POST', '/sim/v1/users', {
    email: `admin@${options.tenantId}.ac.kr`,
    name: 'Admin',
    institution_id: options.tenantId,
  });
  if (user.status !== 201) throw new Error(`user: ${JSON.stringify(user.body)}`);
  const application = await api(sim, 'POST', '/sim/v1/applications', {
    service_id: options.serviceId,
    user_id: user.body.id,
    kind: options.kind ?? 'service',
    ...options.application,
  });
  if (application.status !== 201) throw new Error(`application: ${JSON.stringify(application.body)}`);
  return {
    service: service.body,
    userId: user.body.id as number,
    applicationId: application.body.id as number,
  };
}
