import type { TenantEvent, TenantEventBus, TenantId } from '@mt-paas/context';
import { describe, expect, it, vi } from 'vitest';

/** Two buses that reach each other (two instances), and a way to close both. */
export interface BusPair {
  first: TenantEventBus;
  second: TenantEventBus;
  close(): Promise<void>;
}

const event = (tenantId: string, type: TenantEvent['type'] = 'tenant.changed'): TenantEvent =>
  ({ type, tenantId: tenantId as TenantId, at: new Date().toISOString() }) as TenantEvent;

/** The `TenantEventBus` contract, run by every implementation. */
export function describeEventBus(name: string, createPair: () => Promise<BusPair>): void {
  describe(`TenantEventBus contract: ${name}`, () => {
    it('delivers an event to every subscriber, the publishing instance included', async () => {
      const pair = await createPair();
      const heardByFirst: TenantEvent[] = [];
      const heardBySecond: TenantEvent[] = [];
      await pair.first.subscribe((received) => void heardByFirst.push(received));
      await pair.second.subscribe((received) => void heardBySecond.push(received));
      await pair.first.publish(event('univ_1'));
      await pair.second.publish(event('univ_2', 'tenant.deleted'));
      await vi.waitFor(() => {
        expect(heardByFirst.map((received) => received.tenantId).sort()).toEqual(['univ_1', 'univ_2']);
        expect(heardBySecond.map((received) => received.tenantId).sort()).toEqual(['univ_1', 'univ_2']);
      });
      expect(heardBySecond.find((received) => received.tenantId === 'univ_2')?.type).toBe('tenant.deleted');
      await pair.close();
    });

    it('stops delivering after unsubscribe, and a failing handler does not stop the others', async () => {
      const pair = await createPair();
      const heard: string[] = [];
      const unsubscribe = await pair.second.subscribe(
        (received) => void heard.push(`a:${received.tenantId}`),
      );
      await pair.second.subscribe(() => {
        throw new Error('handler failure');
      });
      await pair.second.subscribe((received) => void heard.push(`b:${received.tenantId}`));
      await pair.first.publish(event('univ_1'));
      await vi.waitFor(() => expect(heard.sort()).toEqual(['a:univ_1', 'b:univ_1']));
      await unsubscribe();
      await pair.first.publish(event('univ_2'));
      await vi.waitFor(() => expect(heard).toContain('b:univ_2'));
      expect(heard).not.toContain('a:univ_2');
      await pair.close();
    });
  });
}
