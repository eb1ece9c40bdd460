"""A JSONField that gives dicts back in the order they were stored.

PostgreSQL's jsonb reorders object keys (shorter keys first), which would scramble a spreadsheet row's
columns: the raw row on a lead's page, the problem-rows CSV and the rows sent to the model must keep
the file's column order. Each stored object carries its key order under ORDER_KEY.
"""

from __future__ import annotations

from django.db import models

ORDER_KEY = "__keys__"


def _encode(value):
    if isinstance(value, dict):
        encoded = {key: _encode(item) for key, item in value.items()}
        encoded[ORDER_KEY] = list(value)
        return encoded
    if isinstance(value, list):
        return [_encode(item) for item in value]
    return value


def _decode(value):
    if isinstance(value, dict):
        order = value.pop(ORDER_KEY, None)
        keys = [key for key in order if key in value] if isinstance(order, list) else []
        keys += [key for key in value if key not in keys]
        return {key: _decode(value[key]) for key in keys}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


class OrderedJSONField(models.JSONField):
    def get_prep_value(self, value):
        return super().get_prep_value(_encode(value))

    def from_db_value(self, value, expression, connection):
        return _decode(super().from_db_value(value, expression, connection))
