"""The topic exchanges, one per producing service."""

from kombu import Exchange

#: Owned by the Order service. Durable topic exchange, as Tidings declares it too, so either side
#: may declare it first without a conflict.
ORDER_EXCHANGE = Exchange('order', type='topic', durable=True)
