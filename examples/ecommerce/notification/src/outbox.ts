import {
  type Customer,
  type Dispatched,
  formatCents,
  type Order,
  orderTotalCents,
} from '@ecommerce/contracts';

/** A message the service would send (this example records it instead of sending it). */
export interface Notification {
  /** `N-1`, `N-2`, ... in recording order. */
  readonly id: string;
  readonly kind: 'order-confirmed' | 'order-dispatched';
  readonly orderId: number;
  /** Id of the event that caused it. */
  readonly messageId: string;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
}

/**
 * Notification's domain: what to tell customers, and whom. It keeps its own copy of each
 * order's customer (a read model built from `order.v1.submit`), so it never asks Order.
 */
export class Outbox {
  private readonly sent: Notification[] = [];
  /** Customer of each order seen; `null` when the order came without one. */
  private readonly contacts = new Map<number, Customer | null>();
  /** Ids of the events already turned into notifications (at-least-once delivery; per process). */
  private readonly processed = new Set<string>();

  /** Confirms a submitted order to its customer. Returns what was recorded, if anything. */
  orderSubmitted(order: Order, messageId: string): Notification | undefined {
    this.contacts.set(order.id, order.customer ?? null);
    if (!order.customer || this.processed.has(messageId)) return undefined;
    const items = order.lines.reduce((sum, line) => sum + line.quantity, 0);
    return this.record({
      kind: 'order-confirmed',
      orderId: order.id,
      messageId,
      to: order.customer.email,
      subject: `Order #${order.id} confirmed`,
      text: `Hello ${order.customer.name}, we received your order #${order.id}: ${items} ${items === 1 ? 'item' : 'items'}, total ${formatCents(orderTotalCents(order))}.`,
    });
  }

  /**
   * Tells the customer their parcel left. Throws (so the event is retried) while the order's
   * submit has not been seen: the two events travel on different queues and may cross.
   */
  orderDispatched(event: Dispatched, messageId: string): Notification | undefined {
    const customer = this.contacts.get(event.orderId);
    if (customer === undefined) {
      throw new Error(`order #${event.orderId} not seen yet; its dispatch notice will be retried`);
    }
    if (!customer || this.processed.has(messageId)) return undefined;
    return this.record({
      kind: 'order-dispatched',
      orderId: event.orderId,
      messageId,
      to: customer.email,
      subject: `Order #${event.orderId} is on its way`,
      text: `Hello ${customer.name}, your order #${event.orderId} left with ${event.carrier} (shipment ${event.shipmentId}).`,
    });
  }

  /** Every notification recorded, oldest first. */
  list(): Notification[] {
    return [...this.sent];
  }

  private record(draft: Omit<Notification, 'id'>): Notification {
    const notification = { id: `N-${this.sent.length + 1}`, ...draft };
    this.sent.push(notification);
    this.processed.add(draft.messageId);
    return notification;
  }
}
