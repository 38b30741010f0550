/**
 * The isolation test kit of `@mt-paas/db`: framework-neutral checks that return findings, so they run
 * under vitest, node:test, jest or a CI script alike. Assert on `report.ok` / `findings.length`.
 */
export type { CatalogGateFinding, CatalogGateOptions, GateFindingCode } from './catalog-gate.js';
export { checkCatalogGate } from './catalog-gate.js';
export type { IsolationModeContractOptions } from './isolation-contract.js';
export { testIsolationModeStore } from './isolation-contract.js';
export type {
  IsolationKitOptions,
  IsolationReport,
  IsolationViolation,
} from './isolation-kit.js';
export { assertIsolation, testIsolationMode } from './isolation-kit.js';
