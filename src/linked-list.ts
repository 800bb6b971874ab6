/** An item that can sit in one {@link LinkedList}: it carries its own neighbours. */
export interface Linked<T> {
  prev: T | undefined;
  next: T | undefined;
}

/**
 * A doubly linked list threaded through its items, oldest first: adding and removing one
 * allocates nothing and hashes nothing. A `Set` that takes and drops items over and over, as a
 * consumer's unsettled deliveries and a channel's unconfirmed publishes do, keeps rehashing its
 * table. An item is in at most one list at a time.
 */
export class LinkedList<T extends Linked<T>> {
  size = 0;
  private head: T | undefined;
  private tail: T | undefined;

  /** Appends `item`, the newest. */
  add(item: T): void {
    item.prev = this.tail;
    item.next = undefined;
    if (this.tail) this.tail.next = item;
    else this.head = item;
    this.tail = item;
    this.size++;
  }

  /** Removes `item`; does nothing when it is not in the list. */
  delete(item: T): void {
    if (item.prev) item.prev.next = item.next;
    else if (this.head === item) this.head = item.next;
    else return;
    if (item.next) item.next.prev = item.prev;
    else this.tail = item.prev;
    item.prev = item.next = undefined;
    this.size--;
  }

  /** The items, oldest first; removing the item being visited is safe. */
  *values(): Generator<T> {
    for (let item = this.head; item; ) {
      const next = item.next;
      yield item;
      item = next;
    }
  }

  /** The items, oldest first, as an array. */
  toArray(): T[] {
    return [...this.values()];
  }
}
