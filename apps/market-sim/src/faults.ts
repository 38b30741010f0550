import { z } from 'zod';

/** Fault injection, switchable over the API (`PUT /sim/v1/faults`), kept in memory. */
export const faultsSchema = z.strictObject({
  /** Answers to the report endpoints (heartbeat, usage, status, audit alerts, subscription). */
  reports: z
    .strictObject({
      /** Answer this status (5xx or 429) instead of processing the report. */
      status: z.number().int().min(400).max(599).optional(),
      /** … for this many requests (then it clears itself); without `count` and `until`: until cleared. */
      count: z.number().int().positive().optional(),
      /** … until this time (ISO 8601). */
      until: z.iso.datetime({ offset: true }).optional(),
      /** `Retry-After` seconds sent with the failure. */
      retryAfterSeconds: z.number().int().nonnegative().optional(),
      /** Wait this long before answering every report (also the failures). */
      delayMs: z.number().int().nonnegative().max(120_000).optional(),
    })
    .optional(),
  /** Outgoing webhook deliveries. */
  deliveries: z
    .strictObject({
      /** The next N deliveries are lost on the way (logged as `dropped`, sent again only by a replay). */
      drop: z.number().int().positive().optional(),
      /** The next N deliveries are sent twice (same id, same signature). */
      duplicate: z.number().int().positive().optional(),
      /** The next N deliveries are held, then sent newest first once N have gathered. */
      outOfOrder: z.number().int().min(2).optional(),
      /** Wait this long before sending each delivery. */
      delayMs: z.number().int().nonnegative().max(120_000).optional(),
    })
    .optional(),
});

/** The faults in force. */
export type Faults = z.infer<typeof faultsSchema>;

/** The mutable fault switchboard shared by the server and the dispatcher. */
export interface FaultSwitch {
  get(): Faults;
  set(faults: Faults): Faults;
  clear(): void;
  /** For a report request: the failure to answer (if any) and the delay; counts down `count`. */
  takeReportFault(now: Date): { status?: number; retryAfterSeconds?: number; delayMs: number };
  /** Takes one unit of a countdown fault of deliveries (`drop`, `duplicate`); true when it applied. */
  takeDeliveryFault(kind: 'drop' | 'duplicate'): boolean;
  /** Takes one unit of `outOfOrder` for a new delivery; returns the batch size when it applied. */
  takeHold(): number | undefined;
  /** The size of the batch being gathered (held), if any. */
  holdBatch(): number | undefined;
  /** Called once a held batch has been released. */
  releasedHold(): void;
}

export function createFaultSwitch(): FaultSwitch {
  let faults: Faults = {};
  // The batch size of an out-of-order hold survives `outOfOrder` counting down to 0.
  let holding: { batch: number; remaining: number } | undefined;
  const reports = () => faults.reports;
  return {
    get: () => structuredClone(faults),
    set(next) {
      faults = structuredClone(next);
      const batch = faults.deliveries?.outOfOrder;
      holding = batch === undefined ? undefined : { batch, remaining: batch };
      return structuredClone(faults);
    },
    clear() {
      faults = {};
      holding = undefined;
    },
    takeReportFault(now) {
      const fault = reports();
      if (fault === undefined) return { delayMs: 0 };
      const delayMs = fault.delayMs ?? 0;
      if (fault.status === undefined) return { delayMs };
      if (fault.until !== undefined && now.getTime() >= Date.parse(fault.until)) {
        const { status: _status, until: _until, count: _count, ...rest } = fault;
        faults = { ...faults, reports: rest };
        return { delayMs };
      }
      if (fault.count !== undefined) {
        const left = fault.count - 1;
        const { status: _status, count: _count, ...rest } = fault;
        faults = { ...faults, reports: left > 0 ? { ...fault, count: left } : rest };
      }
      return {
        status: fault.status,
        delayMs,
        ...(fault.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: fault.retryAfterSeconds }),
      };
    },
    takeDeliveryFault(kind) {
      const left = faults.deliveries?.[kind];
      if (left === undefined || left <= 0) return false;
      const deliveries = { ...faults.deliveries };
      if (left - 1 > 0) deliveries[kind] = left - 1;
      else delete deliveries[kind];
      faults = { ...faults, deliveries };
      return true;
    },
    takeHold() {
      if (holding === undefined || holding.remaining <= 0) return undefined;
      holding.remaining -= 1;
      const deliveries = { ...faults.deliveries };
      if (holding.remaining > 0) deliveries.outOfOrder = holding.remaining;
      else delete deliveries.outOfOrder;
      faults = { ...faults, deliveries };
      return holding.batch;
    },
    holdBatch: () => holding?.batch,
    releasedHold() {
      if (holding !== undefined && holding.remaining <= 0) holding = undefined;
    },
  };
}
