"""Submits N orders and exits.

    /usr/bin/python3 -m order [N] [FIRST_ID]

Prints one JSON line per order: ``{"order_id": 1, "task_id": "..."}``. ``BROKER_URL`` selects
the broker. The exchange is declared before the first publish, and each publish waits for the
broker's confirm, so when this exits 0 the broker has every message.
"""

import json
import sys

from event_manager.app import create_app
from order import sample_orders


def main(argv: list) -> int:
    count = int(argv[1]) if len(argv) > 1 else 1
    first_id = int(argv[2]) if len(argv) > 2 else 1
    app = create_app('order')
    try:
        for order in sample_orders(count, first_id):
            result = order.submit()
            print(json.dumps({'order_id': order.id, 'task_id': result.id}), flush=True)
    finally:
        app.close()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
