import { MtPaasError } from '@mt-paas/context';
import type { TenantTransaction } from '@mt-paas/db';
import { marketplaceFastify } from '@mt-paas/marketplace/fastify';
import { mtPaasFastify } from '@mt-paas/middleware/fastify';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { ServiceFramework } from './create-service-framework.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Runs `fn` in one transaction scoped to the request's tenant, in the configured isolation mode
     * (`TENANT_CONTEXT_MISSING` on a route without a tenant).
     */
    tenantDb<T>(fn: (tx: TenantTransaction) => T | Promise<T>): Promise<T>;
    /** Whether the request's tenant has the feature in its effective entitlements (false without a tenant). */
    hasFeature(name: string): boolean;
  }
}

/** The framework's Fastify plugin (`await app.register(mt.fastify)`). */
export type FrameworkFastifyPlugin = FastifyPluginAsync<Record<never, never>>;

/**
 * The tenant pipeline (`@mt-paas/middleware`'s plugin, with the framework's pipeline), `req.tenantDb(fn)`,
 * `req.hasFeature(name)`, the marketplace routes (in their own encapsulated scope, so their raw-body parser
 * stays there), and the audit of every 401 (control's `authFailure`, aggregated per window).
 */
export function createFrameworkFastifyPlugin(framework: ServiceFramework): FrameworkFastifyPlugin {
  const plugin: FrameworkFastifyPlugin = async (app) => {
    await app.register(mtPaasFastify, { pipeline: framework.pipeline });

    app.decorateRequest('tenantDb', function tenantDb<
      T,
    >(this: FastifyRequest, fn: (tx: TenantTransaction) => T | Promise<T>): Promise<T> {
      const tenantId = this.tenant?.tenantId;
      if (tenantId === undefined) {
        return Promise.reject(
          new MtPaasError(
            'TENANT_CONTEXT_MISSING',
            'This route has no tenant: req.tenantDb() needs a route whose policy resolves one (tenant: "required").',
          ),
        );
      }
      return framework.tenantDb.forTenant(tenantId).run(fn);
    });
    app.decorateRequest('hasFeature', function hasFeature(this: FastifyRequest, name: string): boolean {
      return this.tenant?.entitlements?.features[name] === true;
    });

    app.addHook('onResponse', (request, reply, done) => {
      if (reply.statusCode === 401) {
        framework.control.audit.authFailure({
          ...(request.tenant?.tenantId === undefined ? {} : { tenantId: request.tenant.tenantId }),
          reason: 'unauthenticated',
          ip: request.ip,
          ...(request.routeOptions.url === undefined ? {} : { endpoint: request.routeOptions.url }),
        });
      }
      done();
    });

    await app.register(marketplaceFastify, { receiver: framework.receiver });
  };
  return fp(plugin, { fastify: '5.x', name: '@mt-paas/framework' });
}
