"""A JSONField that gives dicts back in the order they were stored.

PostgreSQL's jsonb reorders object keys (shorter keys first), which would scramble a spreadsheet row's
columns: the raw row on a lead's page and the values an undo restores must keep the file's column
order. So every dict is stored as `{"__pairs__": [[key, value], ...]}`. Because *every* dict is
wrapped, a user's own key can never be mistaken for ours (a column named `__pairs__` or `__keys__` is
just a pair), and decoding is one pass over the pairs.

Values written by the first version carry their key order in a `__keys__` member instead; they are
still read (linearly), and rewritten in the new shape when saved again.
"""

from __future__ import annotations

import json

from django.db import models

PAIRS_KEY = "__pairs__"
LEGACY_ORDER_KEY = "__keys__"


def encode(value):
    if isinstance(value, dict):
        return {PAIRS_KEY: [[key, encode(item)] for key, item in value.items()]}
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    return value


def decode(value):
    if isinstance(value, dict):
        pairs = value.get(PAIRS_KEY)
        if len(value) == 1 and isinstance(pairs, list):
            return {key: decode(item) for key, item in pairs}
        return _decode_legacy(value)
    if isinstance(value, list):
        return [decode(item) for item in value]
    return value


def _decode_legacy(value: dict) -> dict:
    order = value.get(LEGACY_ORDER_KEY)
    present = {key: item for key, item in value.items() if key != LEGACY_ORDER_KEY}
    keys = [key for key in order if key in present] if isinstance(order, list) else []
    listed = set(keys)
    keys += [key for key in present if key not in listed]
    return {key: decode(present[key]) for key in dict.fromkeys(keys)}


class OrderedJSONField(models.JSONField):
    def get_prep_value(self, value):
        return super().get_prep_value(encode(value))

    def from_db_value(self, value, expression, connection):
        return decode(super().from_db_value(value, expression, connection))


def dumps(value) -> str:
    """The JSON text OrderedJSONField stores for `value` (what the field would send the database), for
    writers that send rows with executemany; a dict's plain values skip encode's per-value call."""
    return json.dumps(_encode_fast(value))


def _encode_fast(value):
    if isinstance(value, dict):
        return {
            PAIRS_KEY: [
                [key, item if item is None or type(item) in _SCALARS else _encode_fast(item)]
                for key, item in value.items()
            ]
        }
    if isinstance(value, list | tuple):
        return [_encode_fast(item) for item in value]
    return value


_SCALARS = (str, int, float, bool)
