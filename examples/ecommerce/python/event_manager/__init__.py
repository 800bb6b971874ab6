"""Shared contracts of the seed's Python services: exchanges, message types and their events.

Every service imports this package; no service imports another. It is the Python twin of the
TypeScript contracts package in ``examples/ecommerce/contracts``.
"""

from event_manager.event import Event, UnroutableError
from event_manager.exchanges import ORDER_EXCHANGE

__all__ = ['Event', 'ORDER_EXCHANGE', 'UnroutableError']
