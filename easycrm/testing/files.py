"""Input files for tests: the sample files kept in the repository and small generated CSVs."""

from __future__ import annotations

import csv
from pathlib import Path

# Four hand-made files: simple_leads.csv, duplicates.csv, latin1_semicolon.csv, multi_sheet.xlsx.
SAMPLES = Path(__file__).resolve().parents[2] / "processing" / "tests" / "data"

HEADER = ["First Name", "Last Name", "Company", "Email", "Phone"]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def people(count: int, *, domain: str = "example.com") -> list[list[str]]:
    """`count` distinct people as rows under HEADER."""
    return [
        [f"First{i}", f"Last{i}", f"Company {i % 7}", f"person{i}@{domain}", f"+1 415 555 {i % 10000:04d}"]
        for i in range(count)
    ]
