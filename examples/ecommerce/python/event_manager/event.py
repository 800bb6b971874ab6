"""``Event``: a Celery task per routing key, declared as a descriptor on a message class.

On the class, ``Order.submit`` is the :class:`Event`, to register callbacks on. On an instance,
``order.submit()`` publishes that instance: a Celery task message (protocol v2, JSON) named after
the routing key, sent to the event's exchange with the routing key. Any worker whose queue is
bound to a matching pattern runs the task, which structures the payload back into the class with
cattrs and calls every registered callback with it.
"""

from functools import partial
from typing import Any, Callable, List, Optional, Type

import cattr
from amqp.exceptions import ChannelError
from celery import Task, shared_task
from celery.result import AsyncResult
from kombu import Exchange

Callback = Callable[[Any], Any]

#: AMQP reply code of a ``basic.return`` for a mandatory message that matched no queue.
NO_ROUTE = 312


class UnroutableError(Exception):
    """A message reached no queue: nothing is bound to its routing key on its exchange."""


class Event:
    """A named, versioned event (``order.v1.submit``) of a message class.

    The routing key is the task name, so a worker dispatches on it; the version lives only in
    the routing key.
    """

    def __init__(self, exchange: Exchange, routing_key: str):
        self.exchange = exchange
        self.routing_key = routing_key
        self.owner: Optional[type] = None
        self.task: Optional[Task] = None
        self._callbacks: List[Callback] = []

    def __set_name__(self, owner: type, name: str) -> None:
        # The owner is known only now, and the task needs it to structure payloads.
        self.owner = owner

        def deliver(instance: Any) -> None:
            self.deliver(instance)

        self.task = shared_task(
            deliver,
            name=self.routing_key,
            exchange=self.exchange,
            routing_key=self.routing_key,
            ignore_result=True,
        )

    def __get__(self, instance: Any, owner: Type[Any]) -> Any:
        if instance is None:
            return self
        return partial(self.send, instance)

    def register_callback(self, callback: Callback) -> Callback:
        """Calls ``callback(message)`` for each message of this event; usable as a decorator."""
        self._callbacks.append(callback)
        return callback

    def send(self, message: Any) -> AsyncResult:
        """Publishes ``message``; returns the task's result handle (its ``id`` is the task id).

        The exchange is declared first, so sending works before any consumer has started, and
        the message is mandatory, so one that no queue receives raises :class:`UnroutableError`
        instead of vanishing (the seed did neither).
        """
        try:
            return self.task.apply_async(
                kwargs={'instance': cattr.unstructure(message)},
                exchange=self.exchange,
                routing_key=self.routing_key,
                declare=[self.exchange],
                mandatory=True,
            )
        except ChannelError as error:
            if getattr(error, 'reply_code', None) != NO_ROUTE:
                raise
            raise UnroutableError(
                f'no queue is bound to {self.routing_key} on exchange {self.exchange.name}: '
                'start a consumer first'
            ) from error

    def deliver(self, instance: Any) -> None:
        """What the task runs: structures ``instance`` into the owner class, calls each callback."""
        message = cattr.structure(instance, self.owner)
        for callback in list(self._callbacks):
            callback(message)

    def __repr__(self) -> str:
        return f'Event({self.exchange.name!r}, {self.routing_key!r})'
