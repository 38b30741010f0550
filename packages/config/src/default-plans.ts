/**
 * The plans every config starts from: the four tiers of seed 003 ("Tenant Tiers"), written in the
 * YAML shape (snake_case) so that a config's `plans:` section is deep-merged over them exactly
 * like an overlay. A config may change any field of a plan, add plans, or remove one with
 * `<plan>: null`.
 *
 * Numbers from the seed's table: API requests per month, storage (1 GB = 1024 MB), compute hours,
 * users, services, the yes/no features, and the SLA. `unlimited` (or `null`) means no limit;
 * ENTERPRISE "Custom" storage is unlimited until the vendor sets a number. `rpm` and
 * `llm_tokens` are not in the seed's table: they are mt-paas defaults a vendor is expected to tune.
 */
export const DEFAULT_PLANS = {
  free: {
    name: 'Free',
    rpm: 60,
    quotas: {
      api_requests: { limit: 10_000, period: 'monthly', enforcement: 'block' },
      storage_mb: { limit: 1_024, period: 'never', enforcement: 'block' },
      compute_hours: { limit: 10, period: 'monthly', enforcement: 'block' },
      users: { limit: 3, period: 'never', enforcement: 'block' },
      services: { limit: 5, period: 'never', enforcement: 'block' },
      llm_tokens: { limit: 100_000, period: 'monthly', enforcement: 'block' },
    },
    features: {
      custom_branding: false,
      sso: false,
      priority_support: false,
      white_labeling: false,
      dedicated_schema: false,
    },
  },
  starter: {
    name: 'Starter',
    rpm: 300,
    sla: '99%',
    quotas: {
      api_requests: { limit: 100_000, period: 'monthly', enforcement: 'block' },
      storage_mb: { limit: 10_240, period: 'never', enforcement: 'block' },
      compute_hours: { limit: 100, period: 'monthly', enforcement: 'block' },
      users: { limit: 10, period: 'never', enforcement: 'block' },
      services: { limit: 25, period: 'never', enforcement: 'block' },
      llm_tokens: { limit: 1_000_000, period: 'monthly', enforcement: 'block' },
    },
    features: {
      custom_branding: false,
      sso: false,
      priority_support: false,
      white_labeling: false,
      dedicated_schema: false,
    },
  },
  professional: {
    name: 'Professional',
    rpm: 1_200,
    sla: '99.9%',
    quotas: {
      api_requests: { limit: 1_000_000, period: 'monthly', enforcement: 'block' },
      storage_mb: { limit: 102_400, period: 'never', enforcement: 'block' },
      compute_hours: { limit: 500, period: 'monthly', enforcement: 'block' },
      users: { limit: 50, period: 'never', enforcement: 'block' },
      services: { limit: 100, period: 'never', enforcement: 'block' },
      llm_tokens: { limit: 10_000_000, period: 'monthly', enforcement: 'throttle' },
    },
    features: {
      custom_branding: true,
      sso: true,
      priority_support: true,
      white_labeling: false,
      dedicated_schema: false,
    },
  },
  enterprise: {
    name: 'Enterprise',
    rpm: 6_000,
    sla: '99.99%',
    quotas: {
      api_requests: { limit: 'unlimited', period: 'monthly', enforcement: 'alert' },
      storage_mb: { limit: 'unlimited', period: 'never', enforcement: 'alert' },
      compute_hours: { limit: 'unlimited', period: 'monthly', enforcement: 'alert' },
      users: { limit: 'unlimited', period: 'never', enforcement: 'alert' },
      services: { limit: 'unlimited', period: 'never', enforcement: 'alert' },
      llm_tokens: { limit: 'unlimited', period: 'monthly', enforcement: 'overage' },
    },
    features: {
      custom_branding: true,
      sso: true,
      priority_support: true,
      white_labeling: true,
      dedicated_schema: true,
    },
  },
} as const;

/** The names of the built-in plans, cheapest first. */
export const DEFAULT_PLAN_NAMES = Object.keys(DEFAULT_PLANS) as (keyof typeof DEFAULT_PLANS)[];
