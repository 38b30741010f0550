import type { StorageMode } from '../provisioner.js';
import type { ProvisioningEnvironment } from './environment.js';

/** Every direction a tenant can be moved in. */
export const MOVE_PAIRS: Array<[StorageMode, StorageMode]> = [
  ['row', 'schema'],
  ['row', 'database'],
  ['schema', 'row'],
  ['schema', 'database'],
  ['database', 'row'],
  ['database', 'schema'],
];

/** How much of a tenant's storage exists in a mode (schema / database: 1 or 0; row: its course rows). */
export async function storageLeft(
  environment: ProvisioningEnvironment,
  mode: StorageMode,
  id: string,
): Promise<number> {
  if (mode === 'schema') {
    return (await environment.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [`t_${id}`])).length;
  }
  if (mode === 'database') {
    return (
      await environment.query('SELECT 1 FROM pg_database WHERE datname = $1', [
        `${environment.databasePrefix}${id}`,
      ])
    ).length;
  }
  return (await environment.query('SELECT 1 FROM public.courses WHERE tenant_id = $1', [id])).length;
}
