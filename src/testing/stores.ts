import { afterEach, describe, expect, it } from 'vitest';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { silentLogger } from '../logger.js';
import type { IdempotencyOptions, IdempotencyStore } from '../runtime/idempotency.js';
import { createService, type Service } from '../runtime/service.js';
import { MemoryBroker } from '../transports/memory/broker.js';
import { canRun, uniqueName } from './broker.js';
import { waitFor } from './conformance.js';
import { testOrderSchema } from './schema.js';

/** How the idempotency store suite gets stores, and what the store does not promise. */
export interface IdempotencyStoreSuiteOptions {
  /**
   * Returns a store over the backend under test. Called more than once per test when a test
   * plays several consumers; every store it returns must see the same data (as the stores of two
   * processes sharing one Redis or one database do). Keys are unique per test.
   */
  readonly create: () => IdempotencyStore | Promise<IdempotencyStore>;
  /** What the store does not promise. */
  readonly features: {
    /**
     * `release` from a consumer whose lease expired leaves a newer claim by another consumer
     * alone. Needs `create()` to return independent instances over the same data.
     */
    readonly tokenRelease: boolean;
  };
}

const order = (id: number) => ({ id, lines: [] });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const submit = defineEvent(defineExchange('order'), 'submit', testOrderSchema);

/**
 * The behaviour every {@link IdempotencyStore} must have, written once and run against each
 * implementation: claim, busy, done, expiry of leases and of done records, release, atomic claims
 * under concurrency, and the runtime on top (a handler that throws is not recorded; two consumers
 * racing on one id run the handler once; a processed id is forgotten after `ttlMs`).
 *
 * Timings are short (a few hundred milliseconds), so the store must honour millisecond durations.
 */
export function describeIdempotencyStoreConformance(
  name: string,
  options: IdempotencyStoreSuiteOptions,
): void {
  describe(`idempotency store conformance: ${name}`, () => {
    const services: Service[] = [];
    const key = () => uniqueName('key');

    afterEach(async () => {
      for (const s of services.splice(0)) await s.stop();
    });

    describe('protocol', () => {
      it('claims a key once, reports busy while claimed, and done once completed', async () => {
        const store = await options.create();
        const k = key();
        expect(await store.claim(k, 10_000)).toBe('claimed');
        expect(await store.claim(k, 10_000)).toBe('busy');
        await store.complete(k, 10_000);
        expect(await store.claim(k, 10_000)).toBe('done');
        expect(await store.claim(k, 10_000)).toBe('done');
      });

      it('keeps keys apart', async () => {
        const store = await options.create();
        const [a, b] = [key(), key()];
        expect(await store.claim(a, 10_000)).toBe('claimed');
        expect(await store.claim(b, 10_000)).toBe('claimed');
        await store.complete(a, 10_000);
        expect(await store.claim(b, 10_000)).toBe('busy');
      });

      it('forgets a done key after its ttl', async () => {
        const store = await options.create();
        const k = key();
        expect(await store.claim(k, 10_000)).toBe('claimed');
        await store.complete(k, 150);
        expect(await store.claim(k, 10_000)).toBe('done');
        await sleep(300);
        expect(await store.claim(k, 10_000)).toBe('claimed');
      });

      it('lets another consumer claim a key whose lease expired', async () => {
        const [first, second] = [await options.create(), await options.create()];
        const k = key();
        expect(await first.claim(k, 150)).toBe('claimed');
        expect(await second.claim(k, 10_000)).toBe('busy');
        await sleep(300);
        expect(await second.claim(k, 10_000)).toBe('claimed');
      });

      it('forgets a released claim, so a retry can claim it', async () => {
        const store = await options.create();
        const k = key();
        expect(await store.claim(k, 10_000)).toBe('claimed');
        await store.release(k);
        expect(await store.claim(k, 10_000)).toBe('claimed');
      });

      it('does not forget a done key on release', async () => {
        const store = await options.create();
        const k = key();
        expect(await store.claim(k, 10_000)).toBe('claimed');
        await store.complete(k, 10_000);
        await store.release(k);
        expect(await store.claim(k, 10_000)).toBe('done');
      });

      it.skipIf(
        !canRun(
          options.features.tokenRelease,
          `${name}: releasing after an expired lease`,
          'the store does not promise it (features.tokenRelease is false)',
        ),
      )(
        'keeps the claim of another consumer when a consumer whose lease expired releases',
        async () => {
          const [late, current, third] = [
            await options.create(),
            await options.create(),
            await options.create(),
          ];
          const k = key();
          expect(await late.claim(k, 150)).toBe('claimed');
          await sleep(300);
          expect(await current.claim(k, 10_000)).toBe('claimed');
          await late.release(k);
          expect(await third.claim(k, 10_000)).toBe('busy');
          await third.release(k);
          expect(await late.claim(k, 10_000)).toBe('busy');
          await current.release(k);
          expect(await third.claim(k, 10_000)).toBe('claimed');
        },
      );

      it('grants exactly one of many concurrent claims on a key', async () => {
        const stores = [await options.create(), await options.create()];
        const k = key();
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => stores[i % 2]!.claim(k, 10_000)),
        );
        expect(results.filter((r) => r === 'claimed')).toHaveLength(1);
        expect(results.filter((r) => r === 'busy')).toHaveLength(19);
      });
    });

    describe('idempotent handlers', () => {
      /** Starts `consumers` services on one broker, each with its own store from `create()`. */
      async function setup(
        handler: (id: number) => unknown,
        consumers = 1,
        idempotency: Omit<IdempotencyOptions, 'store'> = {},
      ) {
        const broker = new MemoryBroker();
        const counts = { handled: 0, duplicate: 0, failed: 0 };
        for (let i = 0; i < consumers; i++) {
          const s = createService({
            name: 'billing',
            transport: broker.transport(),
            logger: silentLogger,
            retry: { baseDelayMs: 10, jitter: 0 },
            idempotency: { store: await options.create(), busyRetryMs: 20, ...idempotency },
          });
          s.on(submit, (o) => handler(o.id));
          s.observe('handled', () => counts.handled++);
          s.observe('duplicate', () => counts.duplicate++);
          s.observe('failed', () => counts.failed++);
          await s.start();
          services.push(s);
        }
        const producer = createService({
          name: 'order',
          transport: broker.transport(),
          logger: silentLogger,
        });
        services.push(producer);
        return { counts, producer };
      }

      it('acknowledges a message with a processed id without running the handler', async () => {
        const runs: number[] = [];
        const { producer, counts } = await setup((id) => runs.push(id));
        const first = await producer.publish(submit, order(1));
        await waitFor(() => counts.handled === 1, 'the first message to be handled');
        await producer.publish(submit, order(1), { id: first.id });
        await producer.publish(submit, order(2));
        await waitFor(() => counts.handled === 2 && counts.duplicate === 1, 'a duplicate');
        expect(runs.sort()).toEqual([1, 2]);
      });

      it('does not record a handler that threw, so its retry runs, and only once', async () => {
        let calls = 0;
        const { producer, counts } = await setup(() => {
          calls++;
          if (calls === 1) throw new Error('transient');
        });
        const first = await producer.publish(submit, order(7));
        await waitFor(() => counts.handled === 1, 'the retry to succeed');
        expect(counts.failed).toBe(1);
        await producer.publish(submit, order(7), { id: first.id });
        await waitFor(() => counts.duplicate === 1, 'the duplicate to be skipped');
        expect(calls).toBe(2);
      });

      it('runs the handler once when two consumers race on five duplicates of an id', async () => {
        const runs: number[] = [];
        const { producer, counts } = await setup(async (id) => {
          runs.push(id);
          await sleep(50);
        }, 2);
        const first = await producer.publish(submit, order(1));
        await Promise.all(
          Array.from({ length: 5 }, () => producer.publish(submit, order(1), { id: first.id })),
        );
        await waitFor(
          () => counts.handled + counts.duplicate === 6,
          'six messages handled or skipped',
        );
        await sleep(100);
        expect(runs).toEqual([1]);
        expect(counts).toMatchObject({ handled: 1, duplicate: 5, failed: 0 });
      });

      it('runs a duplicate again once the processed id has expired', async () => {
        let runs = 0;
        const { producer, counts } = await setup(() => runs++, 1, { ttlMs: 200 });
        const first = await producer.publish(submit, order(3));
        await waitFor(() => counts.handled === 1, 'the first run');
        await producer.publish(submit, order(3), { id: first.id });
        await waitFor(() => counts.duplicate === 1, 'the duplicate within the window');
        await sleep(350);
        await producer.publish(submit, order(3), { id: first.id });
        await waitFor(() => counts.handled === 2, 'a second run after the window');
        expect(runs).toBe(2);
      });
    });
  });
}
