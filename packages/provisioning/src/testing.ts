/**
 * The isolation mode contract suite now lives in `@mt-paas/db/testing` (the modes are db's); it is
 * re-exported here so existing imports keep working.
 */
export type { IsolationModeContractOptions } from '@mt-paas/db/testing';
export { testIsolationModeStore } from '@mt-paas/db/testing';
