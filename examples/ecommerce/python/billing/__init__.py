"""The Billing worker: books every submitted order (here: prints and records it).

Run it from ``examples/ecommerce/python``::

    /usr/bin/python3 -m celery -A billing worker -l INFO -Q billing_order --pool solo

``BILLING_QUEUE`` renames its queue (tests use a unique one); it is bound to ``order.*.submit``
on the ``order`` exchange, so it receives every version of submit.
"""

import os

from celery.utils.log import get_task_logger
from kombu import Queue

from event_manager.app import create_app
from event_manager.exchanges import ORDER_EXCHANGE
from event_manager.types.order import Order
from recording import record

log = get_task_logger(__name__)

QUEUE = os.environ.get('BILLING_QUEUE', 'billing_order')

app = create_app('billing', queues=(
    Queue(QUEUE, exchange=ORDER_EXCHANGE, routing_key='order.*.submit'),
))


@Order.submit.register_callback
def billing_received(order: Order) -> None:
    """Books a submitted order."""
    total = sum(line.quantity * line.price for line in order.lines)
    log.info(f'billing received order {order.id}: {len(order.lines)} line(s), total {total}')
    record('billing', 'billing_received', order)
