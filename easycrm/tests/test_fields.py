"""OrderedJSONField: dicts come back in the order they were stored, whatever their keys are called."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from easycrm.fields import decode, encode
from leads.models import Lead


def test_every_dict_is_stored_as_pairs_so_no_key_is_special():
    value = {"b": 1, "__keys__": ["x"], "__pairs__": [["y", 2]], "a": {"z": 1, "y": 2}}

    assert decode(encode(value)) == value
    assert list(decode(encode(value))) == ["b", "__keys__", "__pairs__", "a"]
    assert list(decode(encode(value))["a"]) == ["z", "y"]


def test_values_written_by_the_first_version_are_still_read_in_order():
    legacy = {"Zip": "1", "A": {"y": 2, "x": 1, "__keys__": ["x", "y"]}, "__keys__": ["Zip", "A"]}

    decoded = decode(legacy)

    assert list(decoded) == ["Zip", "A"] and list(decoded["A"]) == ["x", "y"]


def test_legacy_decoding_is_linear_in_the_number_of_keys():
    keys = [f"column {n}" for n in range(50_000)]
    legacy = {**dict.fromkeys(keys, "v"), "__keys__": keys}

    assert list(decode(legacy)) == keys  # with a list lookup per key this takes minutes


@pytest.mark.django_db
def test_lead_raw_keeps_the_column_order_through_the_database():
    raw = {"Zeta": "1", "Alpha": "2", "__keys__": "3", "mid": "4"}
    lead = Lead.objects.create(first_name="Ann", raw=raw)

    with connection.cursor() as cursor:
        cursor.execute("SELECT raw FROM leads_lead WHERE id = %s", [lead.pk])
        stored = cursor.fetchone()[0]
    lead.refresh_from_db()

    assert list(lead.raw) == list(raw) and lead.raw == raw
    assert "__pairs__" in (stored if isinstance(stored, str) else json.dumps(stored))
