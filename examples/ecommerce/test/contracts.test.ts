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
import { type ArkErrors, type } from 'arktype';
import type { Payload, PayloadInput } from 'tidings';
import { describe, expect, expectTypeOf, it } from 'vitest';

describe('the e-commerce contracts', () => {
  it('keeps the routing keys the seed used (they are public, lasting names)', () => {
    expect(orderSubmit.routingKey(1)).toBe('order.v1.submit');
    expect(orderSubmit.routingKey()).toBe('order.v2.submit');
    expect(orderChargeback.routingKey()).toBe('order.v1.chargeback');
    expect(logisticDispatched.routingKey()).toBe('logistic.v1.dispatched');
  });

  it("accepts the seed's own order message, which has no customer, and returns it as is", () => {
    const seed = {
      id: 1,
      lines: [
        { id: 1, quantity: 2, price: 3 },
        { id: 2, quantity: 1, price: 4.5 },
      ],
    };
    // The same object, not a copy: validation checks and transforms nothing.
    expect(Order(seed)).toBe(seed);
    expect(formatCents(orderTotalCents(seed))).toBe('10.50');
  });

  it('ignores keys it does not declare, and keeps them (a tolerant reader)', () => {
    const order = { id: 1, lines: [{ id: 1, quantity: 1, price: 1, note: 'gift' }], coupon: 'X' };
    expect(Order(order)).toBe(order);
    expect(order).toEqual({
      id: 1,
      lines: [{ id: 1, quantity: 1, price: 1, note: 'gift' }],
      coupon: 'X',
    });
  });

  it('accepts amounts with two decimals, which binary floating point cannot represent exactly', () => {
    const prices = [0, 0.01, 0.1, 4.5, 10.99, 19.99, 1234567.89, 99999999999.99];
    for (const price of prices) {
      expect(Order.allows({ id: 1, lines: [{ id: 1, quantity: 1, price }] }), String(price)).toBe(
        true,
      );
    }
  });

  it.each([
    [
      'no lines (the seed defaulted to an empty list)',
      { id: 1, lines: [] },
      'an order has at least one line',
    ],
    [
      'a zero quantity',
      { id: 1, lines: [{ id: 1, quantity: 0, price: 1 }] },
      'lines[0].quantity must be positive (was 0)',
    ],
    [
      'a fractional quantity',
      { id: 1, lines: [{ id: 1, quantity: 1.5, price: 1 }] },
      'lines[0].quantity must be an integer (was 1.5)',
    ],
    [
      'a negative price',
      { id: 1, lines: [{ id: 1, quantity: 1, price: -0.01 }] },
      'lines[0].price must be non-negative (was -0.01)',
    ],
    [
      'a fraction of a cent',
      { id: 1, lines: [{ id: 1, quantity: 1, price: 1.005 }] },
      'lines[0].price must have at most two decimals (was 1.005)',
    ],
    [
      'a bad email',
      { id: 1, customer: { name: 'A', email: 'a' }, lines: [{ id: 1, quantity: 1, price: 1 }] },
      'customer.email must be an email address (was "a")',
    ],
    [
      'a blank name',
      {
        id: 1,
        customer: { name: ' ', email: 'a@example.com' },
        lines: [{ id: 1, quantity: 1, price: 1 }],
      },
      'customer.name must be a non-blank string (was " ")',
    ],
  ])('refuses an order with %s', (_, order, message) => {
    const result = Order(order);
    expect(result).toBeInstanceOf(type.errors);
    expect((result as ArkErrors).summary).toBe(message);
  });

  it('refuses a chargeback of nothing or without a reason, and a dispatch without a UTC date', () => {
    expect(String(Chargeback({ orderId: 1, amount: 0, reason: 'x' }))).toBe(
      'amount must be positive (was 0)',
    );
    expect(String(Chargeback({ orderId: 1, amount: 1, reason: ' ' }))).toBe(
      'reason must be a non-blank string (was " ")',
    );
    const dispatched = { orderId: 1, shipmentId: 'S-1', carrier: 'courier' };
    expect(Dispatched.allows(dispatched)).toBe(false);
    expect(Dispatched.allows({ ...dispatched, dispatchedAt: '2025-01-31T09:30:00.123Z' })).toBe(
      true,
    );
    expect(Dispatched.allows({ ...dispatched, dispatchedAt: '2025-01-31T10:30:00+01:00' })).toBe(
      false,
    );
    expect(Dispatched.allows({ ...dispatched, dispatchedAt: '2025-02-29T09:30:00Z' })).toBe(false);
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
