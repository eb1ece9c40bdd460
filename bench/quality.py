"""Field accuracy of the offline standardizer on the real-shape fixtures, and a look at real files.

    .venv/bin/python bench/quality.py                      # accuracy per fixture, per class, overall
    .venv/bin/python bench/quality.py --quick              # the same, one summary line per fixture
    .venv/bin/python bench/quality.py FOLDER               # also: every file in FOLDER, by eye

The fixtures are processing/tests/data/real/*.csv|xlsx, each with a sidecar NAME.expected.json holding
the expected lead (model field names) or {"skip": true} per (sheet, row). Rows go through the same
steps as an offline import — parser, offline standardizer in batches of LEAD_BATCH_SIZE, validate_lead —
without a database. A field counts as right when it equals the expected value ("" when the expectation
leaves it out); an expected skip is one unit, right when the row was skipped. Remarks are not scored
here: the "no cell lost" test checks them.

For a folder, each file is printed with the role chosen for every column and why, rows in → leads /
skipped (by reason), and which columns' cells went to remarks. Nothing is compared there: those files
are not ours, and no expectation for them is kept in the repository.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import string
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "easycrm.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from processing import standardize  # noqa: E402
from processing.parsing import FileRejected, SourceRow, iter_rows  # noqa: E402

FIXTURES = ROOT / "processing" / "tests" / "data" / "real"
SCORED_FIELDS = ("first_name", "last_name", "title", "company", "email", "phone")


def import_rows(path: Path) -> tuple[list[SourceRow], list]:
    """The file's rows and their CleanLeads, standardized batch by batch as the pipeline does."""
    rows = list(iter_rows(path, path.name, max_rows=settings.MAX_IMPORT_ROWS, warnings=[]))
    size = settings.LEAD_BATCH_SIZE
    cleaned = []
    for start in range(0, len(rows), size):
        batch = rows[start : start + size]
        leads = standardize.offline_standardize(batch)
        cleaned += [
            standardize.validate_lead(row.cells, lead) for row, lead in zip(batch, leads, strict=True)
        ]
    return rows, cleaned


def score_fixture(path: Path) -> tuple[str, int, int, list[str]]:
    """(class, right, total, mismatches) for one fixture file."""
    expected = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
    rows, cleaned = import_rows(path)
    by_key = {(row.worksheet, row.row): lead for row, lead in zip(rows, cleaned, strict=True)}
    right = total = 0
    mismatches = []
    for item in expected["rows"]:
        key = (item.get("sheet", path.stem), item["row"])
        got = by_key.get(key)
        if item.get("skip"):
            total += 1
            if got is None or got.skip_reason:
                right += 1
            else:
                mismatches.append(f"{key}: expected a skip, got {got.fields}")
            continue
        for name in SCORED_FIELDS:
            total += 1
            want = item["lead"].get(name, "")
            have = "" if got is None or got.skip_reason else got.fields[name]
            if have == want:
                right += 1
            else:
                mismatches.append(f"{key} {name}: expected {want!r}, got {have!r}")
    return expected["class"], right, total, mismatches


def report_fixtures(*, quick: bool) -> float:
    by_class: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    right_all = total_all = 0
    print(f"Field accuracy on {FIXTURES.relative_to(ROOT)}/")
    for path in sorted(FIXTURES.glob("*")):
        if path.suffix not in (".csv", ".xlsx", ".xls"):
            continue
        kind, right, total, mismatches = score_fixture(path)
        by_class[kind][0] += right
        by_class[kind][1] += total
        right_all += right
        total_all += total
        print(f"  {path.name:32} {right:4}/{total:<4} {right / total:7.1%}  ({kind})")
        if not quick:
            for line in mismatches:
                print(f"      {line}")
    print("Per class:")
    for kind, (right, total) in sorted(by_class.items()):
        print(f"  {kind:32} {right:4}/{total:<4} {right / total:7.1%}")
    accuracy = right_all / total_all
    print(f"Overall: {right_all}/{total_all} = {accuracy:.1%}")
    return accuracy


def _column_roles(rows: list[SourceRow]) -> dict[str, list]:
    """Per sheet, the roles the standardizer gives its columns (if it can say)."""
    describe = getattr(standardize, "sheet_column_roles", None)
    if describe is None:
        return {}
    by_sheet: dict[str, list[SourceRow]] = {}
    for row in rows:
        by_sheet.setdefault(row.worksheet, []).append(row)
    roles = {}
    for sheet, sheet_rows in by_sheet.items():
        headers = list(dict.fromkeys(header for row in sheet_rows for header in row.cells))
        roles[sheet] = describe(headers, [row.cells for row in sheet_rows[: settings.LEAD_BATCH_SIZE * 5]])
    return roles


def report_folder(folder: Path) -> None:
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in (".csv", ".xlsx", ".xls"):
            continue
        print(f"\n=== {path.name}")
        try:
            rows, cleaned = import_rows(path)
        except FileRejected as exc:
            print(f"  rejected: {exc}")
            continue
        for sheet, roles in _column_roles(rows).items():
            print(f"  sheet {sheet!r} columns:")
            for column in roles:
                print(f"    {column.header[:40]:40} → {column.role or '(remarks)':10} {column.reason}")
        skipped = collections.Counter(lead.skip_reason for lead in cleaned if lead.skip_reason)
        kept = len(cleaned) - sum(skipped.values())
        print(f"  rows in {len(rows)} → leads {kept}, skipped {sum(skipped.values())}")
        for reason, count in skipped.items():
            print(f"      skipped {count}: {reason}")
        to_remarks: collections.Counter[str] = collections.Counter()
        for row, lead in zip(rows, cleaned, strict=True):
            if lead.skip_reason:
                continue
            # Longest header first: "E-Mail: Angezeigter Name" is a header with ": " in it.
            headers = sorted(row.cells, key=len, reverse=True)
            for line in lead.fields["remarks"].splitlines():
                header = next((header for header in headers if line.startswith(f"{header}: ")), "")
                label = line.partition(": ")[0] if ": " in line else "(continued line)"
                to_remarks[header or label] += 1
        if to_remarks:
            listed = ", ".join(f"{header} ×{count}" for header, count in to_remarks.most_common())
            print(f"  to remarks: {listed}")
        for row, lead in list(zip(rows, cleaned, strict=True))[:3]:
            shown = {name: value for name, value in lead.fields.items() if value and name != "remarks"}
            print(f"  row {row.worksheet}:{row.row} → {lead.skip_reason or shown}")


def check_email_fast_path(count: int) -> bool:
    """The fast path for plain ASCII emails against email-validator on ``count`` generated addresses."""
    from email_validator import EmailNotValidError, validate_email

    # Half near-misses of every kind ...
    rng = random.Random(13)
    alphabet = string.ascii_letters + string.digits + ".-_+'!#@"
    addresses = [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(3, 30)))
        + rng.choice(["", ".com", ".de", ".x1"])
        for _ in range(count // 2)
    ]
    # and half the plain addresses real files are full of.
    domains = ["example.com", "Mail.DE", "a-b.co.uk"]
    names = ["ann", "Bo", "j.doe", "o_neil"]
    addresses += [
        f"{rng.choice(names)}{index}@{rng.choice(domains)}" for index in range(count - len(addresses))
    ]
    standardize._normalized_email.cache_clear()
    started = time.perf_counter()
    ours = [standardize._normalized_email(address) for address in addresses]
    fast = time.perf_counter() - started
    started = time.perf_counter()
    library = []
    for address in addresses:
        try:
            library.append(validate_email(address, check_deliverability=False).normalized)
        except EmailNotValidError:
            library.append("")
    slow = time.perf_counter() - started
    differ = [address for address, a, b in zip(addresses, ours, library, strict=True) if a != b]
    print(
        f"Email fast path: {count:,} generated addresses, {len(differ)} differ from email-validator; "
        f"{fast:.2f} s vs {slow:.2f} s for the library alone"
    )
    for address in differ[:10]:
        print(f"    differs: {address!r}")
    return not differ


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "folder", nargs="?", type=Path, help="also show how every file in this folder imports"
    )
    parser.add_argument("--quick", action="store_true", help="one line per fixture, no mismatch list")
    args = parser.parse_args()
    accuracy = report_fixtures(quick=args.quick)
    same = check_email_fast_path(2_000 if args.quick else 100_000)
    if args.folder and args.folder.is_dir():
        report_folder(args.folder)
    elif args.folder:
        print(f"\n{args.folder} is not a folder here: nothing more to show.")
    # The bar for real files; a fixture that falls below it is a regression.
    return 0 if accuracy >= 0.98 and same else 1


if __name__ == "__main__":
    sys.exit(main())
