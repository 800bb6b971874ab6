import { defineEvent, defineExchange } from 'tidings';
import { z } from 'zod';

/**
 * The e-commerce's shared contracts: the seed's `event_manager`, done with Tidings and zod.
 *
 * Every service imports this package and nothing of another service. A producer owns its
 * exchange; a consumer binds its own queues to it, so adding a consumer never changes a producer.
 *
 * Money on the wire is a JSON number in currency units with at most two decimals (`4.5`), as the
 * seed's Python services send it. Compute with {@link toCents}: integer cents never drift.
 */

/** The exchange the Order service publishes to (`order.v2.submit`, `order.v1.chargeback`). */
export const orderExchange = defineExchange('order');

/** The exchange the Logistic service publishes to (`logistic.v1.dispatched`). */
export const logisticExchange = defineExchange('logistic');

/** An amount of money in currency units: finite, not negative, at most two decimals. */
export const Money = z
  .number()
  .nonnegative()
  .multipleOf(0.01, { message: 'must have at most two decimals' });

/** One line of an order: the seed's `OrderLine(id, quantity, price)`; `price` is per unit. */
export const OrderLine = z.object({
  id: z.number().int().positive(),
  quantity: z.number().int().positive(),
  price: Money,
});
/** One line of an order. */
export type OrderLine = z.infer<typeof OrderLine>;

/** Who placed an order, so that someone can write to them. */
export const Customer = z.object({
  name: z.string().trim().min(1),
  email: z.email(),
});
/** Who placed an order. */
export type Customer = z.infer<typeof Customer>;

/**
 * An order as a message (not a database row): the seed's `Order(id, lines)`. Unlike the seed's
 * `default=list`, an order has at least one line. `customer` is optional because version 1 is
 * the seed's wire format, and the seed's Python producer does not send it.
 */
export const Order = z.object({
  id: z.number().int().positive(),
  customer: Customer.optional(),
  lines: z.array(OrderLine).min(1, { message: 'an order has at least one line' }),
});
/** An order as a message. */
export type Order = z.infer<typeof Order>;

/** The currencies orders can be paid in. */
export const Currency = z.enum(['EUR', 'USD', 'GBP']);
/** The currency of an order. */
export type Currency = z.infer<typeof Currency>;

/** Version 2 of an order: version 1 plus the currency it was paid in. */
export const OrderV2 = Order.extend({ currency: Currency });
/** An order as a version 2 message. */
export type OrderV2 = z.infer<typeof OrderV2>;

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
export const Chargeback = z.object({
  orderId: z.number().int().positive(),
  /** The amount taken back, in currency units. */
  amount: Money.positive(),
  reason: z.string().trim().min(1),
});
/** The payment of an order was reversed. */
export type Chargeback = z.infer<typeof Chargeback>;

/** The payment of an order was reversed: undo its revenue. Routing key `order.v1.chargeback`. */
export const orderChargeback = defineEvent(orderExchange, 'chargeback', Chargeback);

/** The goods of an order left the warehouse. */
export const Dispatched = z.object({
  orderId: z.number().int().positive(),
  shipmentId: z.string().min(1),
  carrier: z.string().min(1),
  /** When the parcel was handed to the carrier (RFC 3339). */
  dispatchedAt: z.iso.datetime(),
});
/** The goods of an order left the warehouse. */
export type Dispatched = z.infer<typeof Dispatched>;

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
