"""The Order service's producer side: builds orders and submits them."""

from typing import List

from event_manager.types.order import Order, OrderLine


def sample_order(order_id: int) -> Order:
    """An order of two lines, the article's: one priced with an int (3), one with a float (4.5).

    The int price checks that consumers get a float all the same.
    """
    return Order(order_id, [OrderLine(1, 2, 3), OrderLine(2, 1, 4.5)])


def sample_orders(count: int, first_id: int = 1) -> List[Order]:
    """``count`` sample orders with ids ``first_id``, ``first_id + 1``, ..."""
    return [sample_order(first_id + i) for i in range(count)]
