import {
  Chargeback,
  Dispatched,
  formatCents,
  logisticDispatched,
  Order,
  type OrderV2,
  orderChargeback,
  orderSubmit,
  orderTotalCents,
} from '@ecommerce/contracts';
import type { Payload, PayloadInput } from 'tidings';
import { describe, expect, expectTypeOf, it } from 'vitest';

describe('the e-commerce contracts', () => {
  it('keeps the routing keys the seed used (they are public, lasting names)', () => {
    expect(orderSubmit.routingKey(1)).toBe('order.v1.submit');
    expect(orderSubmit.routingKey()).toBe('order.v2.submit');
    expect(orderChargeback.routingKey()).toBe('order.v1.chargeback');
    expect(logisticDispatched.routingKey()).toBe('logistic.v1.dispatched');
  });

  it("accepts the seed's own order message, which has no customer", () => {
    const seed = {
      id: 1,
      lines: [
        { id: 1, quantity: 2, price: 3 },
        { id: 2, quantity: 1, price: 4.5 },
      ],
    };
    expect(Order.parse(seed)).toEqual(seed);
    expect(formatCents(orderTotalCents(seed))).toBe('10.50');
  });

  it.each([
    ['no lines (the seed defaulted to an empty list)', { id: 1, lines: [] }],
    ['a zero quantity', { id: 1, lines: [{ id: 1, quantity: 0, price: 1 }] }],
    ['a fractional quantity', { id: 1, lines: [{ id: 1, quantity: 1.5, price: 1 }] }],
    ['a negative price', { id: 1, lines: [{ id: 1, quantity: 1, price: -0.01 }] }],
    ['a fraction of a cent', { id: 1, lines: [{ id: 1, quantity: 1, price: 1.005 }] }],
    [
      'a bad email',
      { id: 1, customer: { name: 'A', email: 'a' }, lines: [{ id: 1, quantity: 1, price: 1 }] },
    ],
  ])('refuses an order with %s', (_, order) => {
    expect(Order.safeParse(order).success).toBe(false);
  });

  it('refuses a chargeback of nothing, and a dispatch without a date', () => {
    expect(Chargeback.safeParse({ orderId: 1, amount: 0, reason: 'x' }).success).toBe(false);
    expect(Chargeback.safeParse({ orderId: 1, amount: 1, reason: ' ' }).success).toBe(false);
    const dispatched = { orderId: 1, shipmentId: 'S-1', carrier: 'courier' };
    expect(Dispatched.safeParse(dispatched).success).toBe(false);
  });

  it('gives handlers and publishers the types inferred from the schemas', () => {
    // Checked by `tsc -p examples/ecommerce`; at run time these are no-ops.
    expectTypeOf<Payload<typeof orderSubmit>>().toEqualTypeOf<OrderV2>();
    expectTypeOf<Payload<typeof orderSubmit, 1>>().toEqualTypeOf<Order>();
    expectTypeOf<Payload<typeof logisticDispatched>>().toEqualTypeOf<Dispatched>();
    expectTypeOf<{ id: 1; lines: [{ id: 1; quantity: '2'; price: 1 }] }>().not.toExtend<
      PayloadInput<typeof orderSubmit>
    >();
  });

  it('formats cents', () => {
    expect([0, 5, 50, 1050, -1234].map(formatCents)).toEqual([
      '0.00',
      '0.05',
      '0.50',
      '10.50',
      '-12.34',
    ]);
  });
});
