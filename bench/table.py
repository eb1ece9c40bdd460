"""Lead table and CSV export at scale: page latency p50/p95 and export rows/s + peak RSS.

    .venv/bin/python bench/table.py                      # 100k leads on SQLite, 1M on PostgreSQL
    .venv/bin/python bench/table.py --quick              # 20k / 100k, for a smoke run
    .venv/bin/python bench/table.py --only sqlite        # one database
    .venv/bin/python bench/table.py --pg-database easycrm_mine   # another scratch database name

Each database run happens in a child process (`--child`) whose settings point at a scratch database
(a temp SQLite file, or the PostgreSQL database `easycrm_bench`, dropped and re-created), filled with
generated leads by bulk SQL. Pages are requested through Django's test client as a logged-in viewer,
so the figures include the view, the query, the count and the template. The baseline column is the
naive approach the view avoids: an exact COUNT(*) of the filtered rows plus the sorted page.

The deep page of the default sort is requested twice: by its number alone (OFFSET, what a typed or
bookmarked `page=` costs) and as the table's "Next" link leads there (`after=` keyset cursor). The
export is streamed twice, each in its own process for its own peak RSS: through the view, and with the
previous implementation (model instances, one yielded line per row) as the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DATABASE = "easycrm_bench"
REPEAT = 25
PAGE_TARGET_MS = 100
EXPORT_TARGET_ROWS_PER_S = 100_000
# Measured before the keyset cursor and the chunked export (issue 13), 1M leads on PostgreSQL.
BEFORE_PG = {"deep page": "530–575 ms", "export": "~45,000 rows/s"}

SCENARIOS = {
    "default (newest first)": "",
    "filter company + sort company": "company=smith&sort=company",
    "filter last name + sort -title": "last_name=son&sort=-title",
    "global search 2 words": "q=ltd+ann",
    "date range + has phone": "updated_from=2020-01-01&has_phone=yes",
    "deep page, sort email (OFFSET)": "sort=email&page={deep}",
    "deep page, newest first (OFFSET)": "page={deep}",
    "deep page, newest first (Next link)": "page={deep}&after={cursor}",
}


def _deep_page(rows: int) -> int:
    """Page 2,000 (50,000 leads in), or halfway through a smaller table."""
    return max(2, min(2000, rows // 50))


def _child(db: str, rows: int) -> dict:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "easycrm.settings")
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    from leads.filters import DEFAULT_PER_PAGE, LeadQuery, PageCursor, leads_filter
    from leads.models import Lead

    setup_test_environment()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    _fill(connection, rows)
    fill_seconds = time.perf_counter() - started
    user = User.objects.create_user("bench-viewer", password="x")
    user.groups.add(Group.objects.get(name="viewer"))
    client = Client()
    client.force_login(user)
    results = {"db": db, "rows": Lead.objects.count(), "fill_seconds": round(fill_seconds, 1), "pages": {}}
    deep = results["deep_page"] = _deep_page(rows)
    # The last lead of the page before, as that page's "Next" link names it.
    last_before = leads_filter(LeadQuery())[(deep - 1) * DEFAULT_PER_PAGE - 1]
    cursor = PageCursor.of("after", last_before).to_param()
    for name, template in SCENARIOS.items():
        query = template.format(deep=deep, cursor=cursor)
        url = reverse("leads:list") + ("?" + query if query else "")
        client.get(url)  # warm the cache and the connection
        timings = []
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            response = client.get(url, headers={"HX-Request": "true"})
            timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.status_code
        if "{deep}" in template:
            assert f"Page {deep:,}<" in response.content.decode(), f"{name}: not page {deep}"
        naive = []
        lead_query = LeadQuery.from_params(_params(query))
        for _ in range(5):
            t0 = time.perf_counter()
            queryset = leads_filter(lead_query)
            queryset.count()
            list(queryset[:25])
            naive.append((time.perf_counter() - t0) * 1000)
        results["pages"][name] = {
            "p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(statistics.quantiles(timings, n=20)[18], 1),
            "naive_exact_count_ms": round(statistics.median(naive), 1),
        }
    return results


def _params(query: str) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(query))


def _fill(connection, rows: int) -> None:
    """Insert `rows` synthetic leads with one SQL statement per chunk (the ORM would take minutes)."""
    first = ["Ann", "Bob", "Carla", "Dmitri", "Eve", "Fatima", "Giorgio", "Hana", "Ivan", "José"]
    last = ["Smith", "Johnson", "Müller", "Rossi", "Garcia", "Larsson", "Anderson", "Ng", "Okafor", "Dubois"]
    company = [
        "Smith Ltd",
        "Globex",
        "Initech",
        "Umbrella",
        "Acme GmbH",
        "",
        "Hooli",
        "Vandelay Ltd",
        "",
        "Stark",
    ]
    title = ["CTO", "Buyer", "", "Head of Sales", "Engineer", "CEO", "", "Analyst", "Designer", "Manager"]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                """
                INSERT INTO leads_lead (first_name, last_name, title, company, email, phone, remarks,
                    source_file, worksheet, source_row, source_sequence, raw, created_at, updated_at)
                SELECT (%s::text[])[1 + i %% 10], (%s::text[])[1 + (i / 10) %% 10] || (i %% 997)::text,
                    (%s::text[])[1 + (i / 7) %% 10], (%s::text[])[1 + (i / 3) %% 10] || CASE WHEN i %% 10 < 5 THEN '' ELSE ' ' || (i %% 500)::text END,
                    'lead' || i || '@example' || (i %% 50) || '.com',
                    CASE WHEN i %% 4 = 0 THEN '' ELSE '+1415555' || lpad((i %% 10000)::text, 4, '0') END,
                    '', 'bench.csv', 'Sheet' || (i %% 3), i, i, '{}'::jsonb,
                    now() - (i || ' minutes')::interval, now() - (i || ' seconds')::interval
                FROM generate_series(1, %s) AS i
                """,
                [first, last, title, company, rows],
            )
            cursor.execute("ANALYZE leads_lead")
            return
        chunk = 50_000
        for start in range(1, rows + 1, chunk):
            values = []
            for i in range(start, min(start + chunk, rows + 1)):
                suffix = "" if i % 10 < 5 else f" {i % 500}"
                values.append(
                    (
                        first[i % 10],
                        f"{last[(i // 10) % 10]}{i % 997}",
                        title[(i // 7) % 10],
                        company[(i // 3) % 10] + (suffix if company[(i // 3) % 10] else ""),
                        f"lead{i}@example{i % 50}.com",
                        "" if i % 4 == 0 else f"+1415555{i % 10000:04d}",
                        "",
                        "bench.csv",
                        f"Sheet{i % 3}",
                        i,
                        i,
                        "{}",
                        "2025-01-01 00:00:00",
                        "2025-06-01 00:00:00",
                    )
                )
            cursor.executemany(
                "INSERT INTO leads_lead (first_name, last_name, title, company, email, phone, remarks, source_file,"
                " worksheet, source_row, source_sequence, raw, created_at, updated_at)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                values,
            )
        cursor.execute("ANALYZE")


def _export_lines_before(queryset):
    """The export as it was before issue 13: model instances, one neutralized line per row."""
    from leads.services import EXPORT_HEADER, csv_lines

    def row(lead):
        return (
            lead.pk,
            lead.first_name,
            lead.last_name,
            lead.title,
            lead.company,
            lead.email,
            lead.phone,
            lead.remarks,
            lead.source_file,
            lead.worksheet,
            lead.source_row if lead.source_row is not None else "",
            lead.created_at.isoformat(),
            lead.updated_at.isoformat(),
        )

    return csv_lines(EXPORT_HEADER, map(row, queryset.iterator(chunk_size=2000)))


def _export_child(db: str, before: bool) -> dict:
    """Stream the whole export (through the view, or the previous implementation); the parent reads
    this process's peak RSS."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "easycrm.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    setup_test_environment()
    client = Client()
    client.force_login(User.objects.get(username="bench-viewer"))
    t0 = time.perf_counter()
    if before:
        from leads.filters import LeadQuery, leads_filter

        # Encoded as StreamingHttpResponse would, so both figures include the same work.
        chunks = (line.encode() for line in _export_lines_before(leads_filter(LeadQuery())))
    else:
        chunks = client.get(reverse("leads:export")).streaming_content
    lines = size = 0
    for chunk in chunks:
        lines += chunk.count(b"\n")
        size += len(chunk)
    seconds = time.perf_counter() - t0
    return {
        "rows": lines - 1,
        "seconds": round(seconds, 1),
        "rows_per_s": round((lines - 1) / seconds),
        "mb": round(size / 1e6, 1),
    }


def _run(db: str, rows: int, data_dir: Path, pg_database: str) -> dict:
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "bench-" + "x" * 40,
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    if db == "postgresql":
        import psycopg

        with psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{pg_database}"')
            conn.execute(f'CREATE DATABASE "{pg_database}"')
        env["DATABASE_URL"] = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{pg_database}"
    else:
        env.pop("DATABASE_URL", None)
    pages = subprocess.run(
        [sys.executable, __file__, "--child", db, "--rows", str(rows)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(pages.stdout.strip().splitlines()[-1])
    for key, extra in (("export", []), ("export_before", ["--before"])):
        export = subprocess.Popen(
            [sys.executable, __file__, "--export-child", db, *extra],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        _, status, usage = os.wait4(export.pid, 0)
        result[key] = json.loads(export.stdout.read().strip().splitlines()[-1])
        result[key]["peak_rss_mb"] = round(usage.ru_maxrss / 1024)
    return result


def _print(result: dict) -> None:
    print(f"\n{result['db']}: {result['rows']:,} leads (filled in {result['fill_seconds']} s)")
    print(
        f"  {'page (25 rows, HTMX fragment)':38} {'p50 ms':>8} {'p95 ms':>8} {'baseline: exact count + page':>30}"
    )
    for name, page in result["pages"].items():
        print(
            f"  {name:38} {page['p50_ms']:8.1f} {page['p95_ms']:8.1f} {page['naive_exact_count_ms']:27.1f} ms"
        )
    pages = result["pages"]
    offset, keyset = pages["deep page, newest first (OFFSET)"], pages["deep page, newest first (Next link)"]
    before_pg = (
        f"; before, 1M PostgreSQL sort email: {BEFORE_PG['deep page']}"
        if result["db"] == "postgresql"
        else ""
    )
    print(
        f"  deep page {result['deep_page']:,}, newest first: OFFSET p95 {offset['p95_ms']:.1f} ms → Next link"
        f" p95 {keyset['p95_ms']:.1f} ms (target < {PAGE_TARGET_MS} ms{before_pg})"
    )
    for key, label in (("export_before", "export CSV, before"), ("export", "export CSV")):
        export = result[key]
        print(
            f"  {label:19} {export['rows']:,} rows in {export['seconds']} s = {export['rows_per_s']:>7,} rows/s,"
            f" {export['mb']} MB, peak RSS {export['peak_rss_mb']} MB"
        )
    before_pg = f"; before, 1M PostgreSQL: {BEFORE_PG['export']}" if result["db"] == "postgresql" else ""
    print(f"  {'':19} target ≥ {EXPORT_TARGET_ROWS_PER_S:,} rows/s at constant memory{before_pg}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--child")
    parser.add_argument("--export-child")
    parser.add_argument("--before", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int)
    parser.add_argument("--pg-database", default=PG_BENCH_DATABASE, help="scratch database, dropped first")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.rows)))
        return 0
    if args.export_child:
        print(json.dumps(_export_child(args.export_child, args.before)))
        return 0
    sizes = {"sqlite": 20_000 if args.quick else 100_000, "postgresql": 100_000 if args.quick else 1_000_000}
    results = []
    for db, rows in sizes.items():
        if args.only and db != args.only:
            continue
        with tempfile.TemporaryDirectory(prefix="easycrm-table-bench-") as tmp:
            result = _run(db, rows, Path(tmp), args.pg_database)
        _print(result)
        results.append(result)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
