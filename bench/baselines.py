"""The baselines of bench/bulk.py, each run as its own process against a migrated database:

    python bench/baselines.py bulk_create FILE.csv      # plain Lead.objects.bulk_create of the rows
    python bench/baselines.py import_export FILE.csv    # django-import-export, tuned bulk upsert by email

Both read the CSV the bench writes (a title line, then the header) with the csv module and map its
columns by name, without validation, standardization, outcomes or revisions: what a bare-bones import
of the same file costs. Prints one line: the rows written.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = {
    "First Name": "first_name",
    "Last Name": "last_name",
    "Job Title": "title",
    "Company": "company",
    "Email": "email",
    "Phone": "phone",
    "Notes": "remarks",
}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        next(reader)  # the title line above the header
        header = [COLUMNS.get(name, "") for name in next(reader)]
        rows = []
        for cells in reader:
            row = {name: cell.strip()[:200] for name, cell in zip(header, cells, strict=False) if name}
            row["email"] = row.get("email", "").lower()
            rows.append(row)
        return rows


def bulk_create(path: Path) -> int:
    from leads.models import Lead

    rows = _rows(path)
    # The unique email constraint: the last row per email, as an upsert would leave it.
    unique = {row["email"]: row for row in rows if row["email"]}
    leads = [Lead(**row) for row in unique.values()] + [Lead(**row) for row in rows if not row["email"]]
    Lead.objects.bulk_create(leads, batch_size=1000)
    return len(leads)


def import_export(path: Path) -> int:
    import tablib
    from import_export import instance_loaders, resources

    from leads.models import Lead

    class LeadResource(resources.ModelResource):
        class Meta:
            model = Lead
            fields = tuple(COLUMNS.values())
            import_id_fields = ("email",)
            # One query for every existing lead of the dataset instead of one per row.
            instance_loader_class = instance_loaders.CachedInstanceLoader
            use_bulk = True
            batch_size = 1000
            skip_diff = True
            skip_unchanged = False
            report_skipped = False
            use_transactions = True

    # Its bulk mode cannot upsert two rows with one email in one batch: the last row per email.
    rows = list({row["email"]: row for row in _rows(path) if row["email"]}.values())
    dataset = tablib.Dataset(headers=list(COLUMNS.values()))
    for row in rows:
        dataset.append([row.get(name, "") for name in COLUMNS.values()])
    result = LeadResource().import_data(dataset, dry_run=False, raise_errors=True)
    return result.total_rows


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "easycrm.settings")
    import django

    django.setup()
    kind, path = sys.argv[1], Path(sys.argv[2])
    print({"bulk_create": bulk_create, "import_export": import_export}[kind](path))


if __name__ == "__main__":
    main()
