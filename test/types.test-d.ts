import {
  type ConfigError,
  createService,
  defineEvent,
  defineExchange,
  type Envelope,
  type Handler,
  type HandlerContext,
  memoryTransport,
  NonRetryableError,
  type Payload,
  type PayloadInput,
  TidingsError,
  type TidingsErrorCode,
  type ValidationError,
  type VersionOf,
} from 'tidings';
import * as v from 'valibot';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';

const order = defineExchange('order');
const Line = z.object({ id: z.number(), quantity: z.number().int(), price: z.number() });
const submit = defineEvent(
  order,
  'submit',
  z.object({ id: z.number(), lines: z.array(Line) }),
).version(
  z.object({ id: z.number(), lines: z.array(Line), currency: z.enum(['EUR', 'USD']) }),
  (v1) => ({ ...v1, currency: 'EUR' as const }),
);
const service = createService({ name: 'billing', transport: memoryTransport() });

describe('types flow from the schema', () => {
  it('gives the handler the newest version by default', () => {
    service.on(submit, (payload, ctx) => {
      expectTypeOf(payload).toEqualTypeOf<{
        id: number;
        lines: { id: number; quantity: number; price: number }[];
        currency: 'EUR' | 'USD';
      }>();
      expectTypeOf(ctx).toEqualTypeOf<HandlerContext>();
      expectTypeOf(ctx.envelope).toEqualTypeOf<Envelope>();
    });
  });

  it('gives the handler the version it asks for', () => {
    service.on(
      submit,
      (payload) => {
        expectTypeOf(payload).toEqualTypeOf<{
          id: number;
          lines: { id: number; quantity: number; price: number }[];
        }>();
        // @ts-expect-error version 1 has no currency
        payload.currency;
      },
      { version: 1 },
    );
  });

  it('lets a generic wrapper infer its payload from the event', () => {
    const wrap =
      <P>(fn: (payload: P, ctx: HandlerContext, extra: string) => unknown): Handler<P> =>
      (payload, ctx) =>
        fn(payload, ctx, 'extra');
    service.on(
      submit,
      wrap((payload) => {
        expectTypeOf(payload.currency).toEqualTypeOf<'EUR' | 'USD'>();
      }),
    );
    service.on(
      submit,
      wrap((payload) => {
        expectTypeOf(payload).toEqualTypeOf<{
          id: number;
          lines: { id: number; quantity: number; price: number }[];
        }>();
      }),
      { version: 1 },
    );
  });

  it('types the upcaster from the previous version', () => {
    defineEvent(order, 'refund', z.object({ amount: z.number() })).version(
      z.object({ cents: z.number().int() }),
      (previous) => {
        expectTypeOf(previous).toEqualTypeOf<{ amount: number }>();
        return { cents: Math.round(previous.amount * 100) };
      },
    );
    defineEvent(order, 'refund', z.object({ amount: z.number() })).version(
      z.object({ cents: z.number().int() }),
      // @ts-expect-error the upcaster must return the new version's input
      (previous) => ({ amount: previous.amount }),
    );
  });

  it('types the downcaster both ways', () => {
    defineEvent(order, 'refund', z.object({ amount: z.number() })).version(
      z.object({ amount: z.number(), reason: z.string() }),
      (previous) => ({ ...previous, reason: 'unknown' }),
      {
        downcast: (next) => {
          expectTypeOf(next).toEqualTypeOf<{ amount: number; reason: string }>();
          return { amount: next.amount };
        },
      },
    );
    defineEvent(order, 'refund', z.object({ amount: z.number() })).version(
      z.object({ cents: z.number() }),
      (previous) => ({ cents: previous.amount * 100 }),
      // @ts-expect-error the downcaster must return the previous version's input
      { downcast: (next) => ({ cents: next.cents }) },
    );
  });

  it('rejects a wrong payload at compile time', async () => {
    const ok = () => service.publish(submit, { id: 1, lines: [], currency: 'USD' });
    expectTypeOf(ok).returns.resolves.toEqualTypeOf<Envelope>();
    // @ts-expect-error currency is required in version 2
    service.publish(submit, { id: 1, lines: [] });
    // @ts-expect-error id must be a number
    service.publish(submit, { id: '1', lines: [], currency: 'EUR' });
    // @ts-expect-error GBP is not a currency of the schema
    service.publish(submit, { id: 1, lines: [], currency: 'GBP' });
    // @ts-expect-error price is missing in a line
    service.publish(submit, { id: 1, lines: [{ id: 1, quantity: 1 }], currency: 'EUR' });
    // An older version can be published with its own payload shape.
    service.publish(submit, { id: 1, lines: [] }, { version: 1 });
    // @ts-expect-error there is no version 3
    service.publish(submit, { id: 1, lines: [] }, { version: 3 });
  });

  it('exposes version numbers and payloads as types', () => {
    expectTypeOf<VersionOf<typeof submit>>().toEqualTypeOf<1 | 2>();
    expectTypeOf<Payload<typeof submit, 1>>().toEqualTypeOf<{
      id: number;
      lines: { id: number; quantity: number; price: number }[];
    }>();
    expectTypeOf<PayloadInput<typeof submit>['currency']>().toEqualTypeOf<'EUR' | 'USD'>();
  });

  it('works with any Standard Schema library (valibot here)', () => {
    const dispatched = defineEvent(
      defineExchange('logistic'),
      'dispatched',
      v.object({ orderId: v.number(), carrier: v.string() }),
    );
    service.on(dispatched, (p) => {
      expectTypeOf(p).toEqualTypeOf<{ orderId: number; carrier: string }>();
    });
    // @ts-expect-error carrier must be a string
    service.publish(dispatched, { orderId: 1, carrier: 2 });
  });

  it('types the context publish the same way', () => {
    service.on(submit, async (_p, ctx) => {
      await ctx.publish(submit, { id: 1, lines: [], currency: 'EUR' });
      // @ts-expect-error wrong payload through the context too
      await ctx.publish(submit, { id: 1 });
    });
  });

  it('types a handler of several events as a union that a switch narrows', () => {
    const chargeback = defineEvent(
      order,
      'chargeback',
      z.object({ orderId: z.number(), reason: z.string() }),
    );
    service.onAny(
      [submit, chargeback],
      (message) => {
        switch (message.event) {
          case 'submit':
            expectTypeOf(message.payload.currency).toEqualTypeOf<'EUR' | 'USD'>();
            // @ts-expect-error a submit has no reason
            message.payload.reason;
            break;
          case 'chargeback':
            expectTypeOf(message.payload).toEqualTypeOf<{ orderId: number; reason: string }>();
            break;
          default:
            expectTypeOf(message).toBeNever();
        }
        expectTypeOf(message.exchange).toEqualTypeOf<'order'>();
      },
      { queue: 'billing.order-events' },
    );
  });
});

describe('event keys', () => {
  const Placed = z.object({ id: z.number(), customer: z.string() });
  it('types the key function from the schema', () => {
    defineEvent(order, 'placed', Placed, {
      key: (p) => {
        expectTypeOf(p).toEqualTypeOf<{ id: number; customer: string }>();
        return p.customer;
      },
    });
    // @ts-expect-error: there is no such field
    defineEvent(order, 'placed2', Placed, { key: (p) => p.customerId });
    // @ts-expect-error: a key is a string or a number
    defineEvent(order, 'placed3', Placed, { key: (p) => ({ id: p.id }) });
  });

  it('takes a key option on publish, and partitions on a handler', () => {
    const placed = defineEvent(order, 'placed4', Placed, { key: (p) => p.customer });
    void service.publish(placed, { id: 1, customer: 'c' }, { key: 'c' });
    service.on(placed, () => {}, { partitions: 4 });
    service.on(placed, () => {}, { queue: 'q2', partitions: { count: 8, consume: [0, 1] } });
  });
});

describe('error codes', () => {
  it("types each class's code as its literal, and the base's as a string", () => {
    expectTypeOf<ValidationError['code']>().toEqualTypeOf<'validation'>();
    expectTypeOf<ConfigError['code']>().toEqualTypeOf<'config'>();
    expectTypeOf<TidingsError['code']>().toEqualTypeOf<string>();
    expectTypeOf<'validation'>().toExtend<TidingsErrorCode>();
    // A handler's own subclass keeps the code of NonRetryableError.
    class OutOfStock extends NonRetryableError {}
    expectTypeOf<OutOfStock['code']>().toEqualTypeOf<'non-retryable'>();
    const e: unknown = new Error();
    if (e instanceof TidingsError) {
      // @ts-expect-error a code is a string, not a number
      e.code.toFixed(2);
    }
  });
});
