"""The Logistic worker: ships every submitted order (here: prints and records it).

Run it from ``examples/ecommerce/python``::

    /usr/bin/python3 -m celery -A logistic worker -l INFO -Q logistic_order --pool solo

``LOGISTIC_QUEUE`` renames its queue; it is bound to ``order.*.submit`` on the ``order`` exchange.
"""

import os

from celery.utils.log import get_task_logger
from kombu import Queue

from event_manager.app import create_app
from event_manager.exchanges import ORDER_EXCHANGE
from event_manager.types.order import Order
from recording import record

log = get_task_logger(__name__)

QUEUE = os.environ.get('LOGISTIC_QUEUE', 'logistic_order')

app = create_app('logistic', queues=(
    Queue(QUEUE, exchange=ORDER_EXCHANGE, routing_key='order.*.submit'),
))


@Order.submit.register_callback
def logistic_received(order: Order) -> None:
    """Plans the shipment of a submitted order."""
    items = sum(line.quantity for line in order.lines)
    log.info(f'logistic received order {order.id}: {items} item(s) to ship')
    record('logistic', 'logistic_received', order)
