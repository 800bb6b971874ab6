"""The Celery app every service of the example uses."""

import os
from typing import Iterable

from celery import Celery
from kombu import Queue

#: Used when ``BROKER_URL`` is not set.
DEFAULT_BROKER_URL = 'amqp://guest:guest@127.0.0.1:5672//'


def create_app(service: str, queues: Iterable[Queue] = ()) -> Celery:
    """Builds the Celery app of one service, consuming ``queues`` when run as a worker.

    The broker comes from ``BROKER_URL``. Messages are JSON (task protocol v2), which is what
    Tidings reads and writes. There is no result backend: events have no results (and Celery 5
    removed the ``amqp`` backend). ``task_acks_late`` acknowledges a message after its callbacks
    ran, not before, so a worker that dies mid-task leaves the message to be redelivered.
    Publishes wait for the broker's confirm.
    """
    app = Celery(service, broker=os.environ.get('BROKER_URL', DEFAULT_BROKER_URL))
    app.conf.update(
        task_serializer='json',
        accept_content=['json'],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message at a time per worker process, so acks_late does not hoard messages.
        worker_prefetch_multiplier=1,
        task_queues=tuple(queues),
        broker_transport_options={'confirm_publish': True},
        broker_connection_retry_on_startup=True,
    )
    return app
