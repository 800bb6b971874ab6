import {
  type Chargeback,
  type Currency,
  type Customer,
  type Dispatched,
  type OrderLine,
  orderTotalCents,
} from '@ecommerce/contracts';

/** Where an order stands: `submitted` -> `dispatched`; either may become `charged_back`. */
export type OrderStatus = 'submitted' | 'dispatched' | 'charged_back';

/** An order as the Order service stores it. */
export interface StoredOrder {
  readonly id: number;
  readonly customer?: Customer;
  readonly currency: Currency;
  readonly lines: readonly OrderLine[];
  /** Sum of quantity × unit price, in integer cents. */
  readonly totalCents: number;
  readonly createdAt: string;
  status: OrderStatus;
  /** Set when Logistic reports the parcel left. */
  shipment?: { readonly id: string; readonly carrier: string; readonly dispatchedAt: string };
  /** Set when the payment was reversed. */
  chargeback?: Pick<Chargeback, 'amount' | 'reason'>;
}

/** What a client sends to place an order. */
export interface NewOrder {
  readonly customer?: Customer | undefined;
  readonly currency: Currency;
  readonly lines: readonly OrderLine[];
}

/** The orders, in memory. Ids are 1, 2, 3... in creation order. */
export class OrderStore {
  private readonly orders = new Map<number, StoredOrder>();
  private lastId = 0;

  /** Stores a new `submitted` order and returns it. */
  create(draft: NewOrder, now: Date = new Date()): StoredOrder {
    const order: StoredOrder = {
      id: ++this.lastId,
      ...(draft.customer && { customer: draft.customer }),
      currency: draft.currency,
      lines: draft.lines,
      totalCents: orderTotalCents(draft),
      createdAt: now.toISOString(),
      status: 'submitted',
    };
    this.orders.set(order.id, order);
    return order;
  }

  /** Forgets an order (used when its submit event could not be published). */
  remove(id: number): void {
    this.orders.delete(id);
  }

  /** The order with this id, if any. */
  get(id: number): StoredOrder | undefined {
    return this.orders.get(id);
  }

  /** Every order, oldest first. */
  list(): StoredOrder[] {
    return [...this.orders.values()];
  }

  /**
   * Records that an order left the warehouse. A `submitted` order becomes `dispatched`; a
   * charged-back one keeps its status. Idempotent. Throws when the order is unknown.
   */
  markDispatched(event: Dispatched): StoredOrder {
    const order = this.orders.get(event.orderId);
    if (!order) throw new Error(`order #${event.orderId} is unknown; cannot mark it dispatched`);
    order.shipment = {
      id: event.shipmentId,
      carrier: event.carrier,
      dispatchedAt: event.dispatchedAt,
    };
    if (order.status === 'submitted') order.status = 'dispatched';
    return order;
  }
}
