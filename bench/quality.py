"""Field accuracy of the offline standardizer on the real-shape fixtures, and a look at real files.

    .venv/bin/python bench/quality.py                      # accuracy per fixture, per class, overall
    .venv/bin/python bench/quality.py --quick              # the same, one summary line per fixture
    .venv/bin/python bench/quality.py FOLDER               # also: every file in FOLDER, by eye

The fixtures are processing/tests/data/real/*.csv|xlsx, each with a sidecar NAME.expected.json holding
the expected lead (model field names) or {"skip": true} per (sheet, row). Rows go through the same
steps as an offline import — parser, offline standardizer in batches of LEAD_BATCH_SIZE, validate_lead —
without a database. A field counts as right when it equals the expected value ("" when the expectation
leaves it out); remarks count as one more field where the expectation spells them out; an expected
skip is one unit, right when the row was skipped. The "no cell lost" test checks every remark.

For a folder, every file goes through the real pipeline (`manage.py import_leads`, in a child process
whose DATA_DIR — database and uploads — is a temporary directory, emptied of leads before each file):
the role recorded for every column and why, rows in → created / updated / unchanged / skipped /
failed, the same file imported again (it must come back all "unchanged"; exit 1 otherwise), which
columns' cells went to the stored leads' remarks, and the first leads. Nothing is compared there:
those files are not ours, and no expectation for them is kept in the repository.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import random
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "easycrm.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from processing import standardize  # noqa: E402
from processing.parsing import SourceRow, iter_rows  # noqa: E402

FIXTURES = ROOT / "processing" / "tests" / "data" / "real"
SCORED_FIELDS = ("first_name", "last_name", "title", "company", "email", "phone")


def scored_fields(expected_lead: dict) -> tuple[str, ...]:
    """The fields scored for one expected lead: remarks too when the expectation spells them out."""
    return SCORED_FIELDS + (("remarks",) if "remarks" in expected_lead else ())


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
        for name in scored_fields(item["lead"]):
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


# Settings a developer's shell may carry that would point the throwaway import at real services.
_SCRUBBED_ENV = ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT", "S3_BUCKET", "SECRET_KEY", "Q_SYNC", "LOG_LEVEL")
# Set for the child process that imports a folder's files into its own temporary database.
_THROWAWAY_FLAG = "QUALITY_THROWAWAY_DATABASE"


@dataclass
class FileImport:
    """What one import of a file did, as the pipeline recorded it."""

    status: str
    rows: int
    outcomes: dict[str, int]  # created, updated, unchanged, kept edits, skipped, failed
    skipped: collections.Counter  # reason → rows
    lead_ids: list[int]  # the rows' leads in file order (created, updated or unchanged)
    column_roles: list[dict]
    error: str = ""

    def line(self) -> str:
        counts = ", ".join(
            f"{name} {count}" for name, count in self.outcomes.items() if count or name in _SHOWN
        )
        return f"{self.rows} → {counts}" + (f" ({self.status}: {self.error})" if self.error else "")

    @property
    def all_unchanged(self) -> bool:
        """Every row that is a lead came back "unchanged" (what a re-import of the same file must say)."""
        return self.outcomes.get("unchanged", 0) == self.rows - sum(self.skipped.values())


_SHOWN = ("created", "updated", "unchanged", "skipped", "failed")


def import_once(path: Path) -> FileImport:
    """``manage.py import_leads FILE`` in this process (the command's own path through the services and
    the batch task), read back from the import's job and batches."""
    from django.core.management import CommandError, call_command

    from processing.models import ImportJob

    output = io.StringIO()
    error = ""
    try:
        call_command("import_leads", "--no-progress", str(path), stdout=output, stderr=output)
    except CommandError as exc:
        error = str(exc)
    job = ImportJob.objects.order_by("-created_at").first()
    if job is None or job.original_filename != path.name[:255]:
        return FileImport("not started", 0, {}, collections.Counter(), [], [], error or output.getvalue())
    skipped: collections.Counter[str] = collections.Counter()
    lead_ids = []
    for batch in job.batches.order_by("batch_number"):
        for result in batch.results:
            if result.get("outcome") == "skipped":
                skipped[result.get("reason") or "skipped"] += 1
            elif result.get("lead_id"):
                lead_ids.append(result["lead_id"])
    outcomes = {
        "created": job.leads_created,
        "updated": job.leads_updated,
        "unchanged": job.rows_unchanged,
        "kept edits": job.rows_kept_edits,
        "skipped": job.rows_skipped,
        "failed": job.rows_failed,
    }
    if job.status != ImportJob.Status.COMPLETED:
        error = job.error_message or error or f"{job.failed_batches} failed batches"
    return FileImport(job.status, job.total_rows, outcomes, skipped, lead_ids, job.column_roles, error)


def _remark_headers(remarks: Iterable[str], headers: list[str]) -> collections.Counter:
    """Which column each remarks line came from ("Header: value"); longest header first, since a
    header may hold ": " itself ("E-Mail: Angezeigter Name")."""
    ordered = sorted(headers, key=len, reverse=True)
    found: collections.Counter[str] = collections.Counter()
    for text in remarks:
        for line in text.splitlines():
            header = next((header for header in ordered if line.startswith(f"{header}: ")), "")
            label = line.partition(": ")[0] if ": " in line else "(continued line)"
            found[header or label] += 1
    return found


def report_file(path: Path) -> FileImport:
    """Import ``path``, print what became of its columns, rows and cells, then import it again: an
    unchanged file must come back all "unchanged"."""
    from leads.models import Lead

    print(f"\n=== {path.name}")
    first = import_once(path)
    for sheet in first.column_roles:
        print(f"  sheet {sheet['sheet']!r} columns:")
        for column in sheet["columns"]:
            taken = column["role"] or "(remarks)"
            region = f" ({column['region']} numbers)" if column.get("region") else ""
            print(f"    {column['header'][:40]:40} → {taken:10} {column['reason']}{region}")
    print(f"  rows in {first.line()}")
    for reason, count in first.skipped.most_common():
        print(f"      skipped {count}: {reason}")
    if first.status == "failed" and not first.rows:
        return first
    again = import_once(path)
    print(f"  again   {again.line()}" + ("" if again.all_unchanged else "  ← NOT all unchanged"))
    leads = Lead.objects.in_bulk(first.lead_ids)
    headers = [column["header"] for sheet in first.column_roles for column in sheet["columns"]]
    to_remarks = _remark_headers((lead.remarks for lead in leads.values()), headers)
    if to_remarks:
        listed = ", ".join(f"{header} ×{count}" for header, count in to_remarks.most_common())
        print(f"  to remarks: {listed}")
    for lead_id in list(dict.fromkeys(first.lead_ids))[:3]:
        if (lead := leads.get(lead_id)) is not None:
            shown = {name: getattr(lead, name) for name in SCORED_FIELDS if getattr(lead, name)}
            print(f"  lead {lead.worksheet}:{lead.source_row} → {shown}")
    return again


def report_folder_here(folder: Path) -> int:
    """Every file of ``folder`` through the real pipeline, into the database configured here (the
    child's throwaway one): migrated first, emptied of leads before each file so files do not meet."""
    from django.core.management import call_command

    from leads.models import Lead

    call_command("migrate", interactive=False, verbosity=0)
    not_unchanged = 0
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in (".csv", ".xlsx", ".xls"):
            continue
        Lead.objects.all().delete()
        again = report_file(path)
        not_unchanged += again.rows > 0 and not again.all_unchanged
    return 1 if not_unchanged else 0


def report_folder(folder: Path) -> int:
    """``report_folder_here`` in a child process whose DATA_DIR (database, uploads) is a temporary
    directory: the developer's var/ and any configured database are never touched."""
    with tempfile.TemporaryDirectory(prefix="quality-") as data_dir:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in _SCRUBBED_ENV and not key.startswith(("DEEPSEEK_", "S3_", "AWS_"))
        }
        env.update(DATA_DIR=data_dir, DEBUG="1", PYTHONUNBUFFERED="1", **{_THROWAWAY_FLAG: data_dir})
        child = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--import-here", str(folder)],
            env=env,
            check=False,
        )
    return child.returncode


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
    # The child process of report_folder, with DATA_DIR pointing at its temporary directory.
    parser.add_argument("--import-here", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.import_here:
        if os.environ.get(_THROWAWAY_FLAG) != str(settings.DATA_DIR):
            parser.error("--import-here is report_folder's child: it imports into its own temporary database")
        return report_folder_here(args.import_here)
    accuracy = report_fixtures(quick=args.quick)
    same = check_email_fast_path(2_000 if args.quick else 100_000)
    reimports = 0
    if args.folder and args.folder.is_dir():
        reimports = report_folder(args.folder)
    elif args.folder:
        print(f"\n{args.folder} is not a folder here: nothing more to show.")
    # The bar for real files; a fixture that falls below it is a regression, and so is a
    # re-import of an unchanged file that is not all "unchanged".
    return 0 if accuracy >= 0.98 and same and not reimports else 1


if __name__ == "__main__":
    sys.exit(main())
