export type { ArchiveManifest, OpenedArchive } from './archive.js';
export { ARCHIVE_FORMAT, ARCHIVE_FORMAT_VERSION, archiveManifestSchema, openArchive } from './archive.js';
export type {
  DockerPlacement,
  DockerPlacementOptions,
  DockerRunner,
  RenderedDeployment,
} from './docker-placement.js';
export { createDockerCli, createDockerPlacement } from './docker-placement.js';
export type {
  ArchiveTable,
  IsolationModeStore,
  IsolationModeStoreOptions,
  PlacementStrategy,
} from './isolation-mode.js';
export { createIsolationModeStore } from './isolation-mode.js';
export type { JobLog, ProvisioningJob } from './jobs.js';
export type { LifecycleAction, LifecycleTransition, TransitionPlan } from './lifecycle.js';
export { LIFECYCLE, planTransition } from './lifecycle.js';
export type { PortAllocator, PortAllocatorOptions, PortBlock } from './port-blocks.js';
export { createPortAllocator } from './port-blocks.js';
export type {
  BlockOptions,
  HookContext,
  OnboardInput,
  Provisioner,
  ProvisionerOptions,
  ProvisioningHooks,
  PurgeOptions,
  StorageMode,
  TransitionOptions,
} from './provisioner.js';
export { createProvisioner } from './provisioner.js';
export type { RenderProblem, TemplateValues } from './templates.js';
export { checkRenderedFiles, renderTemplate } from './templates.js';
export type { TenantRouter, TenantRouterOptions } from './tenant-router.js';
export { createTenantRouter } from './tenant-router.js';
export type {
  ArchiveOptions,
  ExportOptions,
  ExportResult,
  ImportOptions,
  MoveOptions,
  MoveStep,
} from './tenant-transfer.js';
export { WRITE_FREEZE_KEY } from './tenant-transfer.js';
