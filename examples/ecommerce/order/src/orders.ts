import {
  type Chargeback,
  type Currency,
  type Customer,
  type Dispatched,
  fromCents,
  type OrderLine,
  orderTotalCents,
} from '@ecommerce/contracts';
import type { OutboxTransaction } from 'tidings';
import type { PostgresOutbox } from 'tidings/postgres';

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

/**
 * How an order book has an event published about an order it is changing: `tx` is the book's
 * database transaction when it has one (the event then goes into its outbox, in that
 * transaction), `undefined` when the book is in memory (the event is sent at once).
 */
export type Announce = (order: StoredOrder, tx: OutboxTransaction | undefined) => Promise<unknown>;

/** What {@link OrderBook.chargeBack} did. */
export type ChargeBackResult =
  | { readonly status: 'charged-back'; readonly order: StoredOrder }
  | { readonly status: 'unknown' }
  | { readonly status: 'already' };

/**
 * Where the Order service keeps its orders: in memory ({@link OrderStore}) or in PostgreSQL
 * (`PostgresOrders`). A change and the event announcing it happen together or not at all.
 */
export interface OrderBook {
  /**
   * The outbox the book's transactions write events to, when it has one: the service publishes
   * through it and runs its relay.
   */
  readonly outbox?: PostgresOutbox | undefined;
  /** Stores a new `submitted` order and has `announce` publish it; neither happens if either fails. */
  place(draft: NewOrder, announce: Announce): Promise<StoredOrder>;
  /**
   * Marks an order charged back for its whole total and has `announce` publish it; neither
   * happens if either fails.
   */
  chargeBack(id: number, reason: string, announce: Announce): Promise<ChargeBackResult>;
  /** The order with this id, if any. */
  get(id: number): StoredOrder | undefined | Promise<StoredOrder | undefined>;
  /** Every order, oldest first. */
  list(): readonly StoredOrder[] | Promise<readonly StoredOrder[]>;
  /** Records that an order left the warehouse (see {@link OrderStore.markDispatched}). */
  markDispatched(event: Dispatched): StoredOrder | Promise<StoredOrder>;
}

/** The orders, in memory. Ids are 1, 2, 3... in creation order. */
export class OrderStore implements OrderBook {
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

  /**
   * Stores the order, then publishes it; forgets it if the publish fails. Stored first, so that a
   * `dispatched` coming back quickly finds it.
   */
  async place(draft: NewOrder, announce: Announce): Promise<StoredOrder> {
    const order = this.create(draft);
    try {
      await announce(order, undefined);
    } catch (error) {
      this.remove(order.id);
      throw error;
    }
    return order;
  }

  /** Marks the order charged back, then publishes it; undoes the change if the publish fails. */
  async chargeBack(id: number, reason: string, announce: Announce): Promise<ChargeBackResult> {
    const order = this.orders.get(id);
    if (!order) return { status: 'unknown' };
    if (order.status === 'charged_back') return { status: 'already' };
    const before = order.status;
    order.status = 'charged_back';
    order.chargeback = { amount: fromCents(order.totalCents), reason };
    try {
      await announce(order, undefined);
    } catch (error) {
      order.status = before;
      delete order.chargeback;
      throw error;
    }
    return { status: 'charged-back', order };
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
