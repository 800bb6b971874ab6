import { scope } from 'arktype';
import { defineEvent, defineExchange } from 'tidings';

/**
 * The e-commerce's shared contracts: the seed's `event_manager`, done with Tidings and ArkType.
 *
 * Every service imports this package and nothing of another service. A producer owns its
 * exchange; a consumer binds its own queues to it, so adding a consumer never changes a producer.
 *
 * The schemas check and never transform: validation returns the message it was given, not a
 * copy, because it runs on every publish and every delivery. Keys a schema does not declare are
 * ignored (ArkType's default), neither refused nor removed: a tolerant reader, so a producer can
 * add a field before its consumers know it, and a handler receives the message as it was sent.
 *
 * Money on the wire is a JSON number in currency units with at most two decimals (`4.5`), as the
 * seed's Python services send it. Compute with {@link toCents}: integer cents never drift.
 */

/** The exchange the Order service publishes to (`order.v2.submit`, `order.v1.chargeback`). */
export const orderExchange = defineExchange('order');

/** The exchange the Logistic service publishes to (`logistic.v1.dispatched`). */
export const logisticExchange = defineExchange('logistic');

/**
 * At most two decimals, float-safe: `10.99 % 0.01` is not 0 in binary floating point, but
 * `Math.round(10.99 * 100) / 100` is exactly `10.99`, while `1.005` comes back as `1`. It takes
 * the amount alone, and its message is configured on {@link Money}: a narrow that also takes
 * ArkType's traversal context (to write its own error) sends every validation down ArkType's
 * slower path, and an order then took about 16 µs to validate instead of 0.5 µs.
 */
function atMostTwoDecimals(amount: number): boolean {
  return Number.isFinite(amount) && Math.round(amount * 100) / 100 === amount;
}

/**
 * The scope of these schemas. ArkType cannot turn a narrow (a function) into JSON Schema by
 * itself, so its configuration writes {@link atMostTwoDecimals} as `multipleOf: 0.01`, the rule it
 * checks, and leaves any other narrow out. Only schemas made with `$.type`, or derived from
 * them, have that configuration: give a schema that embeds {@link Money} the same scope.
 */
const $ = scope(
  {},
  {
    toJsonSchema: {
      fallback: {
        predicate: (ctx) =>
          ctx.predicate === atMostTwoDecimals ? { ...ctx.base, multipleOf: 0.01 } : ctx.base,
      },
    },
  },
);

/** An id or a quantity: an integer from 1 up to `Number.MAX_SAFE_INTEGER`. */
const PositiveInteger = $.type('number.integer').moreThan(0).atMost(Number.MAX_SAFE_INTEGER);

/** A string with something other than white space in it (checked, not trimmed). */
const NonBlank = $.type(/\S/).configure({ expected: 'a non-blank string' }, 'pattern');

/** An amount of money in currency units: finite, not negative, at most two decimals. */
export const Money = $.type('number >= 0')
  .narrow(atMostTwoDecimals)
  .configure(
    {
      problem: ({ data }) =>
        Number.isFinite(data)
          ? `must have at most two decimals (was ${data})`
          : `must be finite (was ${data})`,
    },
    'predicate',
  );

/** One line of an order: the seed's `OrderLine(id, quantity, price)`; `price` is per unit. */
export const OrderLine = $.type({
  id: PositiveInteger,
  quantity: PositiveInteger,
  price: Money,
});
/** One line of an order. */
export type OrderLine = typeof OrderLine.infer;

/**
 * An email address, by the pattern zod 4's `z.email()` uses: versions 1 and 2 of `order.submit`
 * were published with it, so their contract keeps it (ArkType's own `string.email` differs: it
 * refuses `o'neil@example.com`, and accepts `a..b@example.com`).
 */
const Email = $.type(
  // biome-ignore lint/complexity/noUselessEscapeInRegex: zod's pattern to the character, so that the published JSON Schema does not change.
  /^(?:[A-Za-z0-9_'+\-]+\.)*[A-Za-z0-9_'+\-]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9][A-Za-z0-9\-]*\.)+[A-Za-z]{2,}$/,
)
  .configure({ expected: 'an email address' }, 'pattern')
  .configure({ format: 'email' }, 'self');

/** Who placed an order, so that someone can write to them. */
export const Customer = $.type({
  name: NonBlank,
  email: Email,
});
/** Who placed an order. */
export type Customer = typeof Customer.infer;

/**
 * An order as a message (not a database row): the seed's `Order(id, lines)`. Unlike the seed's
 * `default=list`, an order has at least one line. `customer` is optional because version 1 is
 * the seed's wire format, and the seed's Python producer does not send it.
 */
export const Order = $.type({
  id: PositiveInteger,
  'customer?': Customer,
  lines: OrderLine.array()
    .atLeastLength(1)
    .configure({ message: 'an order has at least one line' }, 'minLength'),
});
/** An order as a message. */
export type Order = typeof Order.infer;

/** The currencies orders can be paid in. */
export const Currency = $.type.enumerated('EUR', 'USD', 'GBP');
/** The currency of an order. */
export type Currency = typeof Currency.infer;

/** Version 2 of an order: version 1 plus the currency it was paid in. */
export const OrderV2 = Order.merge({ currency: Currency });
/** An order as a version 2 message. */
export type OrderV2 = typeof OrderV2.infer;

/**
 * An order was placed and paid: bill it, ship it. Routing keys `order.v1.submit` (the seed's
 * format) and `order.v2.submit` (with the currency).
 *
 * Version 2 upcasts version 1 (every order before it was in euros), so consumers on version 2
 * still handle orders from producers not yet upgraded, such as the seed's Python services. It
 * also declares a downcast (dropping the currency), so consumers still on version 1 keep working
 * while the Order service publishes version 2: the recommended migration path (see
 * docs/concepts.md, Versions).
 */
export const orderSubmit = defineEvent(orderExchange, 'submit', Order).version(
  OrderV2,
  (v1) => ({ ...v1, currency: 'EUR' as const }),
  { downcast: ({ currency: _currency, ...v1 }) => v1 },
);

/** The payment of an order was reversed by the customer's bank. */
export const Chargeback = $.type({
  orderId: PositiveInteger,
  /** The amount taken back, in currency units. */
  amount: Money.moreThan(0),
  reason: NonBlank,
});
/** The payment of an order was reversed. */
export type Chargeback = typeof Chargeback.infer;

/** The payment of an order was reversed: undo its revenue. Routing key `order.v1.chargeback`. */
export const orderChargeback = defineEvent(orderExchange, 'chargeback', Chargeback);

/**
 * A date and time in UTC, RFC 3339 (`2025-01-31T09:30:00Z`, `2025-01-31T09:30:00.123Z`): a real
 * calendar date (leap years included), seconds, an optional fraction, and `Z`; offsets such as
 * `+01:00` are refused. The pattern is zod 4's `z.iso.datetime()`, which version 1 of
 * `logistic.dispatched` was published with.
 */
const UtcDateTime = $.type(
  /^(?:(?:\d\d[2468][048]|\d\d[13579][26]|\d\d0[48]|[02468][048]00|[13579][26]00)-02-29|\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)|(?:02)-(?:0[1-9]|1\d|2[0-8])))T(?:(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?(?:Z))$/,
)
  .configure({ expected: 'an RFC 3339 date and time in UTC (2025-01-31T09:30:00Z)' }, 'pattern')
  .configure({ format: 'date-time' }, 'self');

/** The goods of an order left the warehouse. */
export const Dispatched = $.type({
  orderId: PositiveInteger,
  shipmentId: 'string > 0',
  carrier: 'string > 0',
  /** When the parcel was handed to the carrier (RFC 3339, UTC). */
  dispatchedAt: UtcDateTime,
});
/** The goods of an order left the warehouse. */
export type Dispatched = typeof Dispatched.infer;

/** The goods of an order left the warehouse. Routing key `logistic.v1.dispatched`. */
export const logisticDispatched = defineEvent(logisticExchange, 'dispatched', Dispatched);

/** Converts an amount in currency units to integer cents (`4.5` -> `450`). */
export function toCents(amount: number): number {
  return Math.round(amount * 100);
}

/** Converts integer cents to currency units (`450` -> `4.5`), as money travels on the wire. */
export function fromCents(cents: number): number {
  return cents / 100;
}

/** Formats integer cents as currency units with two decimals (`450` -> `"4.50"`). */
export function formatCents(cents: number): string {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** The total of an order in integer cents: the sum of quantity × unit price over its lines. */
export function orderTotalCents(order: { readonly lines: readonly OrderLine[] }): number {
  return order.lines.reduce((sum, line) => sum + line.quantity * toCents(line.price), 0);
}
