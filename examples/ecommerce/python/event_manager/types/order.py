"""The Order message and its events."""

from typing import List

import attr

from event_manager.event import Event
from event_manager.exchanges import ORDER_EXCHANGE


@attr.s(auto_attribs=True)
class OrderLine:
    """One line of an order: an item, how many, and the unit price."""

    id: int
    quantity: int
    price: float


@attr.s(auto_attribs=True)
class Order:
    """An order as a message (not a database row).

    ``lines`` defaults to a new empty list per order: the seed's ``default=list`` made the
    default the ``list`` type itself.
    """

    id: int
    lines: List[OrderLine] = attr.Factory(list)

    #: An order was submitted: billing books it, logistic ships it.
    submit = Event(ORDER_EXCHANGE, 'order.v1.submit')
    #: A submitted order was charged back: billing reverses it.
    chargeback = Event(ORDER_EXCHANGE, 'order.v1.chargeback')
