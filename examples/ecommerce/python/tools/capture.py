"""Captures the raw message that ``order.submit()`` sends, as JSON, for Tidings' codec tests.

    /usr/bin/python3 tools/capture.py [ORDER_ID] > ../../../src/envelope/fixtures/celery-order-submit.json

Binds a temporary, exclusive queue to ``order.*.submit``, submits one sample order through the
real Celery producer, reads the message back from the queue without any decoding and prints its
exchange, routing key, AMQP properties (named as Tidings' ``MessageProperties``) and body text.
"""

import json
import os
import sys
import time
import uuid

import celery
import kombu
from kombu import Connection, Queue

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from event_manager.app import DEFAULT_BROKER_URL, create_app  # noqa: E402
from event_manager.exchanges import ORDER_EXCHANGE  # noqa: E402
from order import sample_order  # noqa: E402

PROPERTY_NAMES = {
    'content_type': 'contentType',
    'content_encoding': 'contentEncoding',
    'correlation_id': 'correlationId',
    'reply_to': 'replyTo',
    'delivery_mode': 'deliveryMode',
    'priority': 'priority',
    'message_id': 'messageId',
    'timestamp': 'timestamp',
    'type': 'type',
    'app_id': 'appId',
}


def capture(order_id: int) -> dict:
    """Sends one order and returns the message as the broker delivered it."""
    url = os.environ.get('BROKER_URL', DEFAULT_BROKER_URL)
    app = create_app('order')
    with Connection(url) as conn:
        queue = Queue(f'capture-{uuid.uuid4()}', exchange=ORDER_EXCHANGE,
                      routing_key='order.*.submit', exclusive=True)(conn.default_channel)
        queue.declare()
        sample_order(order_id).submit()
        app.close()
        message = None
        for _ in range(50):
            message = queue.get(no_ack=True)
            if message is not None:
                break
            time.sleep(0.1)
        queue.delete()
    if message is None:
        raise SystemExit('capture: the message did not arrive')
    properties = {PROPERTY_NAMES[k]: v for k, v in message.properties.items() if k in PROPERTY_NAMES}
    properties['headers'] = message.headers
    body = message.body
    return {
        'captured': f'examples/ecommerce/python/tools/capture.py, Celery {celery.__version__}, '
                    f'kombu {kombu.__version__}',
        'exchange': message.delivery_info['exchange'],
        'routingKey': message.delivery_info['routing_key'],
        'properties': properties,
        # py-amqp hands over the body already decoded when content_encoding is set.
        'body': body if isinstance(body, str) else body.decode('utf-8'),
    }


if __name__ == '__main__':
    print(json.dumps(capture(int(sys.argv[1]) if len(sys.argv) > 1 else 1), indent=2))
