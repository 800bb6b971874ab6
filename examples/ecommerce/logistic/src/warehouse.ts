import type { Order } from '@ecommerce/contracts';
import { uuidv7 } from 'tidings';

/** A parcel for one order. */
export interface Shipment {
  /** `S-1`, `S-2`, ... in creation order. */
  readonly id: string;
  readonly orderId: number;
  /** Number of items in the parcel (sum of the line quantities). */
  readonly items: number;
  readonly carrier: string;
  readonly dispatchedAt: string;
  /** Id of the `order.v1.submit` message that caused it. */
  readonly causedBy: string;
  /**
   * Id of the `logistic.v1.dispatched` message announcing it, chosen once: re-announcing after a
   * failure reuses it, so consumers can recognise the duplicate.
   */
  readonly announcementId: string;
  /** True once the broker has the announcement. */
  announced: boolean;
}

/** Parcels up to this many items go by post; bigger ones by courier. */
const POST_MAX_ITEMS = 3;

/** Logistic's domain: one shipment per order, in memory. */
export class Warehouse {
  private readonly byOrder = new Map<number, Shipment>();

  /**
   * The shipment of an order, created on first call. Calling again for the same order (a
   * redelivered or re-published submit) returns the same shipment: an order never ships twice.
   */
  shipmentFor(order: Order, messageId: string, now: Date = new Date()): Shipment {
    const existing = this.byOrder.get(order.id);
    if (existing) return existing;
    const items = order.lines.reduce((sum, line) => sum + line.quantity, 0);
    const shipment: Shipment = {
      id: `S-${this.byOrder.size + 1}`,
      orderId: order.id,
      items,
      carrier: items <= POST_MAX_ITEMS ? 'parcel-post' : 'courier',
      dispatchedAt: now.toISOString(),
      causedBy: messageId,
      announcementId: uuidv7(),
      announced: false,
    };
    this.byOrder.set(order.id, shipment);
    return shipment;
  }

  /** The shipment of an order, if any. */
  get(orderId: number): Shipment | undefined {
    return this.byOrder.get(orderId);
  }

  /** Every shipment, oldest first. */
  list(): Shipment[] {
    return [...this.byOrder.values()];
  }
}
