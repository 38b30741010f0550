import type { MtPaasConfig } from '@mt-paas/config';
import type { IsolationMode, TenantEventBus, TenantId } from '@mt-paas/context';
import type { ControlPlane } from '@mt-paas/control';
import type { Catalog } from '@mt-paas/db';
import type { MarketplaceHandlers } from '@mt-paas/marketplace';
import type { OnboardInput, Provisioner } from '@mt-paas/provisioning';
import type { AfterCommit } from './after-commit.js';

/** What the marketplace handlers work with. */
export interface MarketplaceHandlerDependencies {
  catalog: Catalog;
  provisioner: Provisioner;
  control: ControlPlane;
  events: TenantEventBus;
  afterCommit: AfterCommit;
  accessUrl: (tenantId: TenantId) => string;
  config: MtPaasConfig;
  onSsoLogin?: MarketplaceHandlers['onSsoLogin'];
  /** The isolation mode new tenants are placed in. */
  mode: IsolationMode;
}

const GONE = ['deleted', 'purged'];

/**
 * The marketplace's events mapped onto the lifecycle. Each handler runs inside the delivery's receipt
 * transaction; what must follow the commit (provisioning, suspend / offboard, the kill switch, the cache
 * event of a changed subscription) is deferred with `afterCommit`, so it runs once the receipt is stored —
 * never before — and a failure there makes the delivery retryable again.
 */
export function createMarketplaceHandlers(deps: MarketplaceHandlerDependencies): MarketplaceHandlers {
  const { catalog, provisioner, control, events, afterCommit } = deps;
  const tenantsTable = `"${catalog.schema}"."tenants"`;

  return {
    async onProvisionRequested(data) {
      const input: OnboardInput = {
        id: data.tenantId,
        name: data.tenantName,
        adminEmail: data.adminEmail,
        ...(data.adminName === undefined ? {} : { adminName: data.adminName }),
        ...(data.institution === undefined ? {} : { institution: data.institution }),
        applicationId: data.applicationId,
        applicationKind: data.applicationKind,
        ...(data.plan === undefined ? {} : { plan: data.plan }),
        // The plan's entitlements from mt-paas.yaml (plans, features.defaults, security.rate_limit) until
        // the marketplace sends the subscription; a demo ends at its demo_expires_at.
        entitlements: {
          ...entitlementDefaults(deps.config, data.plan ?? 'free'),
          ...(data.demoExpiresAt === undefined ? {} : { expiresAt: data.demoExpiresAt }),
          source: 'marketplace',
        },
      };
      // Written with the receipt: if the process dies before the deferred onboarding ran, the tenant is
      // left `provisioning` and the next start resumes it (resumeProvisioning), instead of being lost
      // behind a receipt that says "processed".
      if ((await catalog.directory.get(data.tenantId)) === undefined) {
        await catalog.tenants.upsert({
          id: data.tenantId,
          name: data.tenantName,
          status: 'provisioning',
          adminEmail: data.adminEmail,
          ...(data.adminName === undefined ? {} : { adminName: data.adminName }),
          ...(data.institution === undefined ? {} : { institution: data.institution }),
          applicationId: data.applicationId,
          applicationKind: data.applicationKind,
          ...(data.plan === undefined ? {} : { plan: data.plan }),
          placement: { mode: deps.mode },
        });
      }
      afterCommit.defer(() => provisioner.onboard(input));
      return { accessUrl: deps.accessUrl(data.tenantId) };
    },

    async onSubscriptionUpdated(data) {
      const graceUntil =
        data.expiresAt !== null && data.gracePeriodHours !== undefined
          ? new Date(data.expiresAt.getTime() + data.gracePeriodHours * 3_600_000)
          : undefined;
      await catalog.tenants.setEntitlements(data.tenantId, {
        plan: data.plan,
        features: data.features,
        limits: data.limits,
        expiresAt: data.expiresAt,
        ...(graceUntil === undefined ? {} : { graceUntil }),
        source: 'marketplace',
      });
      // Every instance drops its cached entitlements once the new ones are committed.
      afterCommit.defer(() =>
        events.publish({ type: 'tenant.changed', tenantId: data.tenantId, at: new Date().toISOString() }),
      );
    },

    async onServiceCancelled(data) {
      const { rows } = await catalog.driver.query<{ id: TenantId }>(
        `SELECT id FROM ${tenantsTable} WHERE application_id = $1 AND status IN ('active', 'grace')
         ${data.tenantId === undefined ? '' : 'AND id = $2'} ORDER BY id`,
        data.tenantId === undefined
          ? [String(data.applicationId)]
          : [String(data.applicationId), data.tenantId],
      );
      const tenantIds = rows.map((row) => row.id);
      afterCommit.defer(async () => {
        for (const id of tenantIds)
          await provisioner.suspend(id, { reason: data.reason ?? 'service_cancelled' });
      });
      return { tenantIds };
    },

    async onUserDeleted(data) {
      const { rows } = await catalog.driver.query<{ id: TenantId }>(
        `SELECT id FROM ${tenantsTable} WHERE lower(admin_email) = lower($1) AND status <> ALL($2::text[]) ORDER BY id`,
        [data.email, GONE],
      );
      const deletedTenants = rows.map((row) => row.id);
      afterCommit.defer(async () => {
        for (const id of deletedTenants) await provisioner.offboard(id, { reason: 'user_deleted' });
      });
      return { deletedTenants };
    },

    onBlocked(data) {
      // After the receipt commits: `tenant.blocked` must not reach other instances before the row does.
      afterCommit.defer(() =>
        control.block(data.tenantId, {
          reason: data.reason,
          gracePeriodHours: data.gracePeriodHours,
          ...(data.blockAt === undefined ? {} : { blockAt: data.blockAt }),
          ...(data.message === undefined ? {} : { message: data.message }),
        }),
      );
    },

    ...(deps.onSsoLogin === undefined ? {} : { onSsoLogin: deps.onSsoLogin }),

    onUnblocked(data) {
      afterCommit.defer(() =>
        control.unblock(data.tenantId, {
          ...(data.reason === undefined ? {} : { reason: data.reason }),
          ...(data.message === undefined ? {} : { message: data.message }),
        }),
      );
    },
  };
}

function entitlementDefaults(config: MtPaasConfig, planName: string) {
  const plan = config.plans[planName];
  return {
    plan: planName,
    features: { ...config.features.defaults, ...plan?.features },
    limits: { rpm: plan?.rpm ?? null, quotas: plan?.quotas ?? {} },
  };
}

/**
 * Onboards every tenant left `provisioning` (a process that died mid-onboarding, or between a provision
 * request's receipt and its onboarding). Onboarding is resumable and serialised per tenant, so several
 * instances starting at once do it once.
 */
export async function resumeProvisioning(
  catalog: Catalog,
  provisioner: Provisioner,
  config: MtPaasConfig,
): Promise<{ resumed: string[]; failed: Array<{ tenantId: string; error: unknown }> }> {
  const { rows } = await catalog.driver.query<{
    id: string;
    name: string;
    plan: string | null;
    admin_email: string | null;
    admin_name: string | null;
    institution: string | null;
    application_id: string | null;
    application_kind: 'demo' | 'service' | null;
  }>(
    `SELECT id, name, plan, admin_email, admin_name, institution, application_id, application_kind
     FROM "${catalog.schema}"."tenants" WHERE status = 'provisioning' ORDER BY id`,
  );
  const resumed: string[] = [];
  const failed: Array<{ tenantId: string; error: unknown }> = [];
  for (const row of rows) {
    try {
      await provisioner.onboard({
        id: row.id,
        name: row.name,
        ...(row.plan === null ? {} : { plan: row.plan }),
        ...(row.admin_email === null ? {} : { adminEmail: row.admin_email }),
        ...(row.admin_name === null ? {} : { adminName: row.admin_name }),
        ...(row.institution === null ? {} : { institution: row.institution }),
        ...(row.application_id === null ? {} : { applicationId: row.application_id }),
        ...(row.application_kind === null ? {} : { applicationKind: row.application_kind }),
        entitlements: { ...entitlementDefaults(config, row.plan ?? 'free'), source: 'marketplace' },
      });
      resumed.push(row.id);
    } catch (error) {
      failed.push({ tenantId: row.id, error });
    }
  }
  return { resumed, failed };
}
