/**
 * The market simulator's REST API (apps/market-sim README, "The REST API") as typed calls: what a
 * market operator and its members do, and what the services reported.
 */
import { call } from '@mt-paas/test-env/processes';

export interface MarketApplication {
  id: number;
  tenantId: string;
  status: string;
}

export interface MarketTenant {
  status: string;
  reportedStatus: string | null;
  plan: string | null;
  accessUrl: string | null;
}

export interface UsageTotal {
  serviceId: string;
  tenantId: string;
  meter: string;
  quantity: number;
  records: number;
}

/** A member who applied for a service and the tenant the approval created. */
export interface OnboardedTenant {
  tenantId: string;
  userId: number;
  email: string;
  applicationId: number;
  deliveryId: string;
}

export type MarketDriver = ReturnType<typeof marketDriver>;

/** Calls against a running market-sim at `baseUrl`. */
export function marketDriver(baseUrl: string) {
  const sim = `${baseUrl}/sim/v1`;
  return {
    url: baseUrl,
    registerService: (body: Record<string, unknown>) => call(`${sim}/services`, { body, expect: 201 }),
    service: (serviceId: string) => call(`${sim}/services/${serviceId}`),
    createInstitution: (id: string, name: string) =>
      call(`${sim}/institutions`, { body: { id, name }, expect: 201 }),
    createUser: (body: { email: string; name: string; institution_id?: string }) =>
      call<{ id: number }>(`${sim}/users`, { body, expect: 201 }),
    deleteUser: (userId: number) =>
      call<{ deliveries: string[] }>(`${sim}/users/${userId}`, { method: 'DELETE' }),
    apply: (body: { service_id: string; user_id: number; kind: 'demo' | 'service'; plan?: string }) =>
      call<MarketApplication>(`${sim}/applications`, { body, expect: 201 }),
    application: (id: number) => call<MarketApplication>(`${sim}/applications/${id}`),
    approve: (id: number) =>
      call<{ status: string; tenant_id: string; delivery_id: string }>(`${sim}/applications/${id}/approve`, {
        method: 'POST',
      }),
    cancel: (id: number) => call(`${sim}/applications/${id}/cancel`, { body: {} }),
    tenant: (serviceId: string, tenantId: string) =>
      call<MarketTenant>(`${sim}/services/${serviceId}/tenants/${tenantId}`),
    /** The tenant, or undefined when the market does not know it. */
    async findTenant(serviceId: string, tenantId: string): Promise<MarketTenant | undefined> {
      const response = await fetch(`${sim}/services/${serviceId}/tenants/${tenantId}`);
      if (response.status === 404) return undefined;
      if (!response.ok) throw new Error(`market tenant lookup answered ${response.status}`);
      return (await response.json()) as MarketTenant;
    },
    block: (serviceId: string, tenantId: string, body: { reason: string; message?: string }) =>
      call<{ delivery_id: string }>(`${sim}/services/${serviceId}/tenants/${tenantId}/block`, { body }),
    unblock: (serviceId: string, tenantId: string) =>
      call(`${sim}/services/${serviceId}/tenants/${tenantId}/unblock`, { body: {} }),
    changePlan: (serviceId: string, tenantId: string, plan: string) =>
      call(`${sim}/services/${serviceId}/tenants/${tenantId}/plan`, { body: { plan } }),
    delivery: (id: string) => call(`${sim}/deliveries/${id}`),
    deliveries: (serviceId: string) =>
      call<{ deliveries: Array<{ id: string; status: string; url: string; eventType?: string }> }>(
        `${sim}/deliveries?service_id=${serviceId}&limit=500`,
      ),
    usage: async (serviceId: string, tenantId: string) =>
      (await call<{ totals: UsageTotal[] }>(`${sim}/usage?service_id=${serviceId}&tenant_id=${tenantId}`))
        .totals,
    auditAlerts: () => call<{ alerts: Array<Record<string, unknown>> }>(`${sim}/audit-alerts`),
    statusSyncs: () => call<{ syncs: Array<Record<string, unknown>> }>(`${sim}/status-syncs`),
    /** A login token for a member (what "open this service as this user" issues). */
    ssoToken: (serviceId: string, userId: number) =>
      call<{ token: string; url: string }>(`${sim}/sso/tokens`, {
        body: { service_id: serviceId, user_id: userId },
      }),

    /**
     * An institution, a member of it, an application for `serviceId` and its approval: the market
     * sends `tenant.provision_requested`. Resolves once the application is approved (the tenant is
     * created on the service asynchronously, by the market's outbox).
     */
    async onboard(input: {
      serviceId: string;
      tenantId: string;
      institutionName: string;
      email: string;
      memberName: string;
      plan: string;
      kind?: 'demo' | 'service';
    }): Promise<OnboardedTenant> {
      await this.createInstitution(input.tenantId, input.institutionName);
      const user = await this.createUser({
        email: input.email,
        name: input.memberName,
        institution_id: input.tenantId,
      });
      const application = await this.apply({
        service_id: input.serviceId,
        user_id: user.id,
        kind: input.kind ?? 'service',
        plan: input.plan,
      });
      const approved = await this.approve(application.id);
      return {
        tenantId: approved.tenant_id,
        userId: user.id,
        email: input.email,
        applicationId: application.id,
        deliveryId: approved.delivery_id,
      };
    },
  };
}
