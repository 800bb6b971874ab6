import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { silentLogger } from '../logger.js';
import { waitFor } from '../testing/conformance.js';
import { MemoryBroker } from '../transports/memory/broker.js';
import { MemoryIdempotencyStore } from './idempotency.js';
import { createService } from './service.js';

const submit = defineEvent(defineExchange('order'), 'submit', z.object({ id: z.number() }));

describe('MemoryIdempotencyStore', () => {
  it('claims once, reports busy while claimed, done once completed, and expires', async () => {
    let now = 1_000;
    const store = new MemoryIdempotencyStore(() => now);
    expect(await store.claim('k', 100)).toBe('claimed');
    expect(await store.claim('k', 100)).toBe('busy');
    await store.complete('k', 5_000);
    expect(await store.claim('k', 100)).toBe('done');
    now += 5_001;
    expect(await store.claim('k', 100)).toBe('claimed');
  });

  it('forgets a released claim, and lets an expired lease be claimed again', async () => {
    let now = 0;
    const store = new MemoryIdempotencyStore(() => now);
    expect(await store.claim('a', 100)).toBe('claimed');
    await store.release('a');
    expect(await store.claim('a', 100)).toBe('claimed');
    now += 101;
    expect(await store.claim('a', 100)).toBe('claimed');
  });

  it('holds at most maxEntries keys, evicting the oldest down to nine tenths, and says so once', async () => {
    const warnings: string[] = [];
    const store = new MemoryIdempotencyStore({
      maxEntries: 10,
      logger: { ...silentLogger, warn: (m) => warnings.push(m) },
    });
    for (let i = 0; i < 10; i++) {
      await store.claim(`k${i}`, 1000);
      await store.complete(`k${i}`, 60_000);
    }
    expect(store.size).toBe(10);
    expect(warnings).toEqual([]);
    // The eleventh evicts the two oldest: 9 remain.
    expect(await store.claim('k10', 1000)).toBe('claimed');
    expect(store.size).toBe(9);
    expect(await store.claim('k2', 1000)).toBe('done');
    expect(await store.claim('k10', 1000)).toBe('busy');
    // k0 was evicted before it expired: a duplicate of it runs again, and the store said so once.
    expect(await store.claim('k0', 1000)).toBe('claimed');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/evicts keys that have not expired/);
    for (let i = 11; i < 30; i++) await store.claim(`k${i}`, 1000);
    expect(store.size).toBeLessThanOrEqual(10);
    expect(warnings).toHaveLength(1);
  });

  it('sweeps expired keys, so a store under steady load stays small', async () => {
    let now = 0;
    const store = new MemoryIdempotencyStore({ now: () => now });
    for (let i = 0; i < 1000; i++) {
      await store.claim(`k${i}`, 100);
      await store.complete(`k${i}`, 500);
      now += 10;
    }
    // Only the keys of the last 500 ms (plus at most a second not yet swept) remain.
    expect(store.size).toBeLessThanOrEqual(150);
  });

  it('refuses a maxEntries that is not a positive integer', () => {
    expect(() => new MemoryIdempotencyStore({ maxEntries: 0 })).toThrow(
      /maxEntries must be an integer >= 1/,
    );
  });
});

describe('idempotent handlers', () => {
  async function setup(handler: (id: number) => void | Promise<void>, consumers = 1) {
    const broker = new MemoryBroker();
    const store = new MemoryIdempotencyStore();
    const services = [];
    for (let i = 0; i < consumers; i++) {
      const s = createService({
        name: 'billing',
        transport: broker.transport(),
        logger: silentLogger,
        retry: { baseDelayMs: 10, jitter: 0 },
        idempotency: { store, busyRetryMs: 20 },
      });
      s.on(submit, (o) => handler(o.id));
      await s.start();
      services.push(s);
    }
    const producer = createService({ name: 'order', transport: broker.transport() });
    return { broker, store, services, producer };
  }

  it('runs the handler once for a message published twice with the same id', async () => {
    const runs: number[] = [];
    const { producer, services } = await setup((id) => void runs.push(id));
    let duplicates = 0;
    services[0]!.observe('duplicate', () => duplicates++);
    const first = await producer.publish(submit, { id: 1 });
    await producer.publish(submit, { id: 1 }, { id: first.id });
    await producer.publish(submit, { id: 2 });
    await waitFor(() => runs.length === 2 && duplicates === 1, 'two runs and one duplicate');
    expect(runs.sort()).toEqual([1, 2]);
  });

  it('does not record a handler that threw, so its retry runs', async () => {
    let calls = 0;
    const done: number[] = [];
    const { producer } = await setup((id) => {
      calls++;
      if (calls === 1) throw new Error('transient');
      done.push(id);
    });
    await producer.publish(submit, { id: 7 });
    await waitFor(() => done.length === 1, 'the retry to succeed');
    expect(calls).toBe(2);
  });

  it('runs the handler once when two consumers race on the same id', async () => {
    const runs: number[] = [];
    const { producer } = await setup(async (id) => {
      runs.push(id);
      await new Promise((r) => setTimeout(r, 50));
    }, 2);
    const first = await producer.publish(submit, { id: 1 });
    await Promise.all(
      Array.from({ length: 5 }, () => producer.publish(submit, { id: 1 }, { id: first.id })),
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(runs).toEqual([1]);
  });
});
