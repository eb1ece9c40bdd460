"""The per-process caches of processing.standardize change its cost, never its answers.

Every cached helper is a pure function of its arguments, so a warm process (caches filled by other
files, or by the same rows before) must give exactly what a cold one gives. The reference path here
empties every cache before each batch; the optimized path keeps them across all files, twice over.
"""

from __future__ import annotations

import functools
import importlib.util
import random
import sys
from pathlib import Path

from django.conf import settings

from processing import standardize
from processing.parsing import RowLimits, SourceRow, parse_rows
from processing.standardize import offline_standardize, validate_lead

DATA = Path(__file__).parent / "data" / "real"


def _clear_caches() -> None:
    for value in vars(standardize).values():
        if hasattr(value, "cache_clear"):
            value.cache_clear()


@functools.cache
def _bench_run():
    spec = importlib.util.spec_from_file_location("bench_run", settings.BASE_DIR / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _generated(layout: str, count: int, seed: int) -> list[SourceRow]:
    """Rows as bench/run.py writes them (its people and layouts), without writing a file."""
    bench = _bench_run()
    rng = random.Random(seed)
    headers = bench.LAYOUTS[layout]
    return [
        SourceRow(
            layout,
            number,
            {h: v for h, v in zip(headers, bench._cells(layout, person, rng), strict=True) if v},
        )
        for number, person in enumerate(bench.people(rng, count), start=2)
    ]


def _files() -> list[list[SourceRow]]:
    paths = sorted(path for path in DATA.iterdir() if path.suffix in (".csv", ".xlsx"))
    # In this process (iter_rows' child costs a process per file); the same rows.
    limits = RowLimits.from_settings()
    files = [list(parse_rows(path, path.name, max_rows=10_000, warnings=[], limits=limits)) for path in paths]
    return files + [_generated("en", 250, 5), _generated("full", 150, 6), _generated("de", 100, 7)]


def _imported(files: list[tuple[int, list[SourceRow]]], *, cold: bool) -> dict[tuple[int, int], tuple]:
    """(file, position) → (lead, cleaned fields, skip reason), the rows batched as an import does."""
    size = settings.LEAD_BATCH_SIZE
    result = {}
    for number, rows in files:
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            if cold:
                _clear_caches()
            leads = offline_standardize(batch)
            for position, (row, lead) in enumerate(zip(batch, leads, strict=True), start):
                clean = validate_lead(row.cells, lead)
                result[number, position] = (lead, clean.fields, clean.skip_reason)
    return result


def test_warm_caches_give_exactly_what_cold_ones_give() -> None:
    files = list(enumerate(_files()))
    reference = _imported(files, cold=True)
    shuffled = files[:]
    random.Random(1).shuffle(shuffled)
    _clear_caches()
    assert _imported(shuffled, cold=False) == reference
    assert _imported(files, cold=False) == reference  # every answer from the caches now
    assert len(reference) > 550


def test_cached_helpers_are_told_apart_by_type() -> None:
    """A header 1 and a header True hash alike; the cached header helpers must not mix them up."""
    assert standardize._header_text(1) == "1"
    assert standardize._header_text(True) == ""
    assert standardize._header_text(1.0) == "1"


def test_long_values_are_answered_but_not_kept() -> None:
    """A hostile file's 32k-character cells must not pile up in the caches."""
    standardize._has_legal_form.cache_clear()
    long_name = "x" * 300 + " GmbH"
    assert standardize._has_legal_form(long_name)
    assert standardize._has_legal_form("Acme GmbH")
    assert standardize._has_legal_form.cache_info().currsize == 1


def test_a_phone_is_found_in_one_cell_not_across_two() -> None:
    """The row's digits are searched in one pass (NUL between cells), with the answer per cell."""
    two_cells = standardize._Source.from_cells({"a": "030 12", "b": "34567"})
    assert not two_cells.contains_digits("03012345")
    assert two_cells.contains_digits("34567")
    nul_inside = standardize._Source.from_cells({"a": "030 12", "b": "tel 0301\x002345"})
    assert nul_inside.contains_digits("03012345")  # a NUL inside a cell is not between cells
    accented = standardize._Source.from_cells({"a": "Müller 0421 555", "b": "0120"})
    assert accented.contains_digits("0421555") and not accented.contains_digits("04215550120")
