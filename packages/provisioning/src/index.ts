export type { JobLog, ProvisioningJob } from './jobs.js';
export type { LifecycleAction, LifecycleTransition, TransitionPlan } from './lifecycle.js';
export { LIFECYCLE, planTransition } from './lifecycle.js';
export type {
  BlockOptions,
  HookContext,
  OnboardInput,
  PlacementStrategy,
  Provisioner,
  ProvisionerOptions,
  ProvisioningHooks,
  PurgeOptions,
  StorageMode,
  TransitionOptions,
} from './provisioner.js';
export { createProvisioner } from './provisioner.js';
