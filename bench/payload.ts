import type { StandardSchemaV1 } from '@standard-schema/spec';
import * as v from 'valibot';
import { z } from 'zod';
import {
  Order as ExampleOrder,
  OrderV2 as ExampleOrderV2,
} from '../examples/ecommerce/contracts/src/index.js';
import { type AnyEvent, defineEvent, defineExchange } from '../src/index.js';

/**
 * The order every scenario sends: the example's `order.v2.submit` shape with a customer and 11
 * lines, about 550 bytes of JSON. `id` is the message's sequence number (the latency scenario
 * matches sends to receipts by it).
 */
export function order(id: number): {
  id: number;
  customer: { name: string; email: string };
  currency: 'EUR';
  lines: { id: number; quantity: number; price: number }[];
} {
  const lines = [];
  for (let i = 0; i < 11; i++) {
    lines.push({ id: 1000 + i, quantity: 1 + (i % 4), price: (1099 + i * 325) / 100 });
  }
  return {
    id,
    customer: { name: 'Ada Lovelace', email: 'ada.lovelace@example.com' },
    currency: 'EUR',
    lines,
  };
}

/** Size of the order's JSON in bytes (reported in the doc). */
export const ORDER_BYTES = Buffer.byteLength(JSON.stringify(order(123_456)));

/**
 * The example's schemas written with zod 4, field for field: what the example used before it
 * moved to ArkType, and the most common choice of users.
 */
const ZodMoney = z
  .number()
  .nonnegative()
  .multipleOf(0.01, { message: 'must have at most two decimals' });
const ZodOrder = z.object({
  id: z.number().int().positive(),
  customer: z.object({ name: z.string().trim().min(1), email: z.email() }).optional(),
  lines: z
    .array(
      z.object({
        id: z.number().int().positive(),
        quantity: z.number().int().positive(),
        price: ZodMoney,
      }),
    )
    .min(1, { message: 'an order has at least one line' }),
});
const ZodOrderV2 = ZodOrder.extend({ currency: z.enum(['EUR', 'USD', 'GBP']) });

/** The example's schemas written with valibot, field for field. */
// valibot's multipleOf is a plain `%`, which refuses 10.99; zod's is float-safe: so is this check.
const Money = v.pipe(
  v.number(),
  v.minValue(0),
  v.check((n) => Math.abs(n * 100 - Math.round(n * 100)) < 1e-8, 'must have at most two decimals'),
);
const OrderLine = v.object({
  id: v.pipe(v.number(), v.integer(), v.gtValue(0)),
  quantity: v.pipe(v.number(), v.integer(), v.gtValue(0)),
  price: Money,
});
const Customer = v.object({
  name: v.pipe(v.string(), v.trim(), v.minLength(1)),
  email: v.pipe(v.string(), v.email()),
});
const ValibotOrder = v.object({
  id: v.pipe(v.number(), v.integer(), v.gtValue(0)),
  customer: v.optional(Customer),
  lines: v.pipe(v.array(OrderLine), v.minLength(1, 'an order has at least one line')),
});
const ValibotOrderV2 = v.object({
  ...ValibotOrder.entries,
  currency: v.picklist(['EUR', 'USD', 'GBP']),
});

/**
 * Which Standard Schema library validates the order: `arktype` is the example's own contracts;
 * `none` accepts anything (a reference: what the runtime costs without validation).
 */
export type SchemaLibrary = 'arktype' | 'zod' | 'valibot' | 'none';

/** A Standard Schema that accepts any value as it is: what the runtime costs without validation. */
const anything: StandardSchemaV1<unknown, unknown> = {
  '~standard': { version: 1, vendor: 'bench', validate: (value) => ({ value }) },
};

/**
 * `<exchange>.submit` with the example's two versions (v2 upcasts v1, and downcasts to it), on an
 * exchange of its own so that every run has unique names.
 */
export function submitEvent(exchange: string, library: SchemaLibrary = 'arktype'): AnyEvent {
  const ex = defineExchange(exchange);
  if (library === 'none') {
    return defineEvent(ex, 'submit', anything).version(anything, (o) => o);
  }
  if (library === 'valibot') {
    return defineEvent(ex, 'submit', ValibotOrder).version(
      ValibotOrderV2,
      (o) => ({ ...o, currency: 'EUR' as const }),
      { downcast: ({ currency: _c, ...o }) => o },
    );
  }
  if (library === 'zod') {
    return defineEvent(ex, 'submit', ZodOrder).version(
      ZodOrderV2,
      (o) => ({ ...o, currency: 'EUR' as const }),
      { downcast: ({ currency: _c, ...o }) => o },
    );
  }
  return defineEvent(ex, 'submit', ExampleOrder).version(
    ExampleOrderV2,
    (o) => ({ ...o, currency: 'EUR' as const }),
    { downcast: ({ currency: _c, ...o }) => o },
  );
}
