import { MtPaasError } from '@mt-paas/context';
import type { Catalog } from '@mt-paas/db';

/** A tenant's block of host ports: `[first, last]`, `size` ports. */
export interface PortBlock {
  tenantId: string;
  /** Index of the block in the range (0 = the first `size` ports). */
  index: number;
  first: number;
  last: number;
}

/** Options of {@link createPortAllocator} (seed 001 `isolation.docker`). */
export interface PortAllocatorOptions {
  /** First host port handed out (`port_range_start`). @default 10200 */
  start?: number;
  /** Ports reserved per tenant (`port_range_size`). @default 100 */
  size?: number;
  /** How many blocks exist. @default as many as fit below port 65536 */
  blocks?: number;
}

/** Hands out port blocks, persisted in the catalog (`<catalog schema>.port_blocks`, catalog migration `0003_port_blocks`). */
export interface PortAllocator {
  /** The tenant's block: its existing one, else the lowest free one. Never the same block to two tenants. */
  allocate(tenantId: string): Promise<PortBlock>;
  /** The tenant's block, if it has one. */
  get(tenantId: string): Promise<PortBlock | undefined>;
  /** Frees the tenant's block (on purge). */
  release(tenantId: string): Promise<void>;
  /** Every allocated block. */
  list(): Promise<PortBlock[]>;
}

/**
 * Port blocks in the catalog's `port_blocks` table. The table belongs to the catalog's own migrations
 * (`@mt-paas/db`, `0003_port_blocks`): run `catalog.migrate()` first, else every call fails with
 * `CONFIG_INVALID`. The allocator runs no DDL, so it can be called inside a caller's catalog transaction
 * (it joins it) and a rollback takes the block back with it.
 *
 * The block index is the primary key and the tenant id is a unique key, so the database itself refuses a
 * block given twice; allocation also takes a transaction-scoped advisory lock so that concurrent callers
 * queue instead of failing.
 */
export function createPortAllocator(catalog: Catalog, options: PortAllocatorOptions = {}): PortAllocator {
  const start = options.start ?? 10_200;
  const size = options.size ?? 100;
  if (!Number.isInteger(start) || start < 1 || start > 65_535 || !Number.isInteger(size) || size < 1) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `isolation.docker: port_range_start must be a port (1-65535) and port_range_size ≥ 1, got ${start} / ${size}.`,
    );
  }
  const fit = Math.floor((65_536 - start) / size);
  const blocks = options.blocks ?? fit;
  if (!Number.isInteger(blocks) || blocks < 1 || blocks > fit) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `isolation.docker: ${blocks} blocks of ${size} ports from ${start} do not fit below 65536 (at most ${fit}).`,
    );
  }
  const table = `"${catalog.schema}"."port_blocks"`;
  const guard = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      if ((error as { code?: unknown } | null)?.code === '42P01') {
        throw new MtPaasError(
          'CONFIG_INVALID',
          `The catalog has no table ${table}: migrate the catalog first (catalog.migrate() or \`mt-paas migrate\`); @mt-paas/db's catalog migration 0003_port_blocks creates it.`,
          { details: { table }, cause: error },
        );
      }
      throw error;
    }
  };
  const toBlock = (row: {
    tenant_id: string;
    block: number;
    first_port: number;
    last_port: number;
  }): PortBlock => ({
    tenantId: row.tenant_id,
    index: row.block,
    first: row.first_port,
    last: row.last_port,
  });
  const get = async (tenantId: string) => {
    const { rows } = await guard(() =>
      catalog.driver.query<{
        tenant_id: string;
        block: number;
        first_port: number;
        last_port: number;
      }>(`SELECT tenant_id, block, first_port, last_port FROM ${table} WHERE tenant_id = $1`, [tenantId]),
    );
    return rows[0] === undefined ? undefined : toBlock(rows[0]);
  };
  return {
    get,
    async allocate(tenantId) {
      return guard(() =>
        catalog.driver.transaction(async (session) => {
          await session.query(`SELECT pg_advisory_xact_lock(hashtext('mt_paas.port_blocks'))`);
          const existing = await session.query<{
            tenant_id: string;
            block: number;
            first_port: number;
            last_port: number;
          }>(`SELECT tenant_id, block, first_port, last_port FROM ${table} WHERE tenant_id = $1`, [tenantId]);
          if (existing.rows[0] !== undefined) return toBlock(existing.rows[0]);
          const free = await session.query<{ block: number }>(
            `SELECT g AS block FROM generate_series(0, $1::int - 1) g
            WHERE NOT EXISTS (SELECT 1 FROM ${table} b WHERE b.block = g) ORDER BY g LIMIT 1`,
            [blocks],
          );
          const index = free.rows[0]?.block;
          if (index === undefined) {
            throw new MtPaasError(
              'SERVICE_UNAVAILABLE',
              `No free port block left: all ${blocks} blocks of ${size} ports from ${start} are taken. Purge offboarded tenants or widen isolation.docker.port_range_*.`,
              { details: { start, size, blocks } },
            );
          }
          const first = start + index * size;
          const inserted = await session.query<{
            tenant_id: string;
            block: number;
            first_port: number;
            last_port: number;
          }>(
            `INSERT INTO ${table} (block, tenant_id, first_port, last_port) VALUES ($1, $2, $3, $4)
           RETURNING tenant_id, block, first_port, last_port`,
            [index, tenantId, first, first + size - 1],
          );
          return toBlock(inserted.rows[0]!);
        }),
      );
    },
    async release(tenantId) {
      await guard(() => catalog.driver.query(`DELETE FROM ${table} WHERE tenant_id = $1`, [tenantId]));
    },
    async list() {
      const { rows } = await guard(() =>
        catalog.driver.query<{
          tenant_id: string;
          block: number;
          first_port: number;
          last_port: number;
        }>(`SELECT tenant_id, block, first_port, last_port FROM ${table} ORDER BY block`),
      );
      return rows.map(toBlock);
    },
  };
}
