"""Records what a worker's callbacks received, one JSON object a line, for tests to check.

``RECORD_FILE`` names the file; when unset nothing is written. Each value is recorded with its
Python type, field by field, so a test sees that a price arrived as a ``float`` and a line as an
``OrderLine``::

    {"service": "billing", "callback": "billing_received", "task": "order.v1.submit",
     "task_id": "...", "root_id": "...", "parent_id": null, "origin": "...",
     "headers": {"ce-source": "order", ...},
     "message": {"type": "Order", "fields": {"id": {"type": "int", "value": 1},
                 "lines": {"type": "list", "items": [{"type": "OrderLine", "fields": {...}}]}}}}
"""

import json
import os
from typing import Any, Dict, Optional

import attr
from celery import current_task


def describe(value: Any) -> Dict[str, Any]:
    """A JSON-ready description of ``value`` that keeps each Python type name."""
    kind = type(value).__name__
    if attr.has(type(value)):
        fields = {a.name: describe(getattr(value, a.name)) for a in attr.fields(type(value))}
        return {'type': kind, 'fields': fields}
    if isinstance(value, (list, tuple)):
        return {'type': kind, 'items': [describe(v) for v in value]}
    if isinstance(value, dict):
        return {'type': kind, 'fields': {str(k): describe(v) for k, v in value.items()}}
    return {'type': kind, 'value': value}


def _request() -> Dict[str, Any]:
    request = getattr(current_task, 'request', None)
    if request is None:
        return {}
    extra = {k: v for k, v in vars(request).items()
             if k.startswith('ce-') or k.startswith('tidings-') or k == 'traceparent'}
    return {
        'task': request.task,
        'task_id': request.id,
        'root_id': request.root_id,
        'parent_id': request.parent_id,
        'origin': getattr(request, 'origin', None),
        'headers': extra,
    }


def record(service: str, callback: str, message: Any, path: Optional[str] = None) -> None:
    """Appends one line describing ``message`` to ``path`` (default: ``$RECORD_FILE``)."""
    path = path or os.environ.get('RECORD_FILE')
    if not path:
        return
    line = {'service': service, 'callback': callback, **_request(), 'message': describe(message)}
    with open(path, 'a', encoding='utf-8') as out:
        out.write(json.dumps(line, default=str) + '\n')
