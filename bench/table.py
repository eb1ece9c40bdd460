"""Lead table and CSV export at scale: page latency p50/p95 (before/after the text sort indexes) and
export rows/s + peak RSS.

    .venv/bin/python bench/table.py                      # 100k leads on SQLite, 1M on PostgreSQL
    .venv/bin/python bench/table.py --quick              # 20k / 100k, 3 requests each, for a smoke run
    .venv/bin/python bench/table.py --only sqlite        # one database
    .venv/bin/python bench/table.py --only postgresql --pg-database easycrm_mine --reuse --no-export

Each database run happens in a child process (`--child`) whose settings point at a scratch database
(a temp SQLite file, or the PostgreSQL database `easycrm_bench`, dropped and re-created unless
`--reuse` finds it), filled with generated leads by bulk SQL. Pages are requested through Django's
test client as a logged-in viewer, so the figures include the view, the query, the count and the
template; next to the wall time, the CPU time of the bench process (the rest is the database's).

Every text sort is measured on page 1 and on the deep page as its Next link reaches it (a keyset
cursor), some also by the Previous link and by page number alone (OFFSET), plus text filters with text
sorts. The "before" column repeats a request without the text sort indexes (dropped in a transaction
that is rolled back), deep pages by number as the table linked them before. The last column names the
indexes in the request's query plans. The export is streamed twice, each in its own process for its
own peak RSS: through the view, and with the previous implementation (model instances, one yielded
line per row) as the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
# --quick (the CI smoke run) only checks that every scenario works.
QUICK_REPEAT = 3
# The "before" requests run without the text sort indexes, where a page sorts the whole table: fewer.
REPEAT_BEFORE = 5
PAGE_TARGET_MS = 100
EXPORT_TARGET_ROWS_PER_S = 100_000
# Measured before the keyset cursor and the chunked export (issue 13), 1M leads on PostgreSQL.
BEFORE_PG = {"deep page": "530–575 ms", "export": "~45,000 rows/s"}
# The indexes leads/migrations/0009 added for the text sorts: dropped for the "before" column.
SORT_INDEXES = [
    f"lead_{name}_sort_idx"
    for name in ("first_name", "last_name", "title", "company", "email", "phone", "worksheet")
]
TEXT_SORTS = (
    "email",
    "-email",
    "company",
    "-company",
    "last_name",
    "first_name",
    "title",
    "-title",
    "phone",
    "worksheet",
)

# name -> (querystring, whether a "before" column is measured). In the querystring {deep} is the deep
# page, {next}/{prev} the cursor of the table's Next link to it / Previous link back to it.
SCENARIOS: dict[str, tuple[str, bool]] = {
    "newest first, page 1": ("", False),
    "newest first, deep page by number (OFFSET)": ("page={deep}", False),
    "newest first, deep page by Next link": ("page={deep}&after={next}", False),
    "newest first, deep page by Previous link": ("page={deep}&before={prev}", False),
    **{
        name: spec
        for sort in TEXT_SORTS
        for name, spec in (
            (f"sort {sort}, page 1", (f"sort={sort}", True)),
            (f"sort {sort}, deep page by Next link", (f"sort={sort}&page={{deep}}&after={{next}}", True)),
        )
    },
    "sort -email, deep page by Previous link": ("sort=-email&page={deep}&before={prev}", True),
    "sort company, deep page by Previous link": ("sort=company&page={deep}&before={prev}", True),
    "sort email, deep page by number (OFFSET)": ("sort=email&page={deep}", True),
    "sort -company, deep page by number (OFFSET)": ("sort=-company&page={deep}", True),
    "filter company + sort company": ("company=smith&sort=company", True),
    "filter company + sort -company": ("company=smith&sort=-company", True),
    "filter last name + sort -title": ("last_name=son&sort=-title", True),
    "filter last name + sort last name": ("last_name=son&sort=last_name", True),
    "filter title + sort company": ("title=engineer&sort=company", True),
    "filter company + sort email": ("company=ltd&sort=email", True),
    "filter title + sort -last_name": ("title=buyer&sort=-last_name", True),
    "filter company + sort email, deep page by Next link": (
        "company=ltd&sort=email&page=40&after={next}",
        True,
    ),
    "global search 2 words": ("q=ltd+ann", False),
    "date range + has phone": ("updated_from=2020-01-01&has_phone=yes", False),
}


def _deep_page(rows: int) -> int:
    """Page 2,000 (50,000 leads in), or halfway through a smaller table."""
    return max(2, min(2000, rows // 50))


def _child(db: str, rows: int, repeat: int) -> dict:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "easycrm.settings")
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import setup_test_environment

    from leads.models import Lead

    setup_test_environment()
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    if not Lead.objects.exists():  # a kept database (--reuse) is filled already
        _fill(connection, rows)
    fill_seconds = time.perf_counter() - started
    user, _ = User.objects.get_or_create(username="bench-viewer")
    user.groups.add(Group.objects.get(name="viewer"))
    client = Client()
    client.force_login(user)
    results = {
        "db": db,
        "rows": Lead.objects.count(),
        "fill_seconds": round(fill_seconds, 1),
        "loadavg_before": os.getloadavg()[0],
        "pages": {},
    }
    deep = results["deep_page"] = _deep_page(results["rows"])
    urls = {name: _url(querystring, deep) for name, (querystring, _) in SCENARIOS.items()}
    for name, url in urls.items():
        results["pages"][name] = {**_time(client, url, repeat, deep if "{deep}" in SCENARIOS[name][0] else 0)}
        results["pages"][name]["indexes"] = _indexes_used(connection, client, url)
    # Before: the same requests without the text sort indexes (dropped in a transaction rolled back
    # after), deep pages by number as the table linked them before the text sorts had cursors.
    from leads import filters

    with transaction.atomic():
        filters.SORT_WINDOW = 0  # the window needs the sort index; the single query is what was before
        with connection.cursor() as cursor:
            for index in SORT_INDEXES:
                cursor.execute(f"DROP INDEX IF EXISTS {index}")
        for name, (querystring, before) in SCENARIOS.items():
            if before:
                old = _url(querystring.replace("&after={next}", "").replace("&before={prev}", ""), deep)
                results["pages"][name]["before"] = _time(client, old, min(repeat, REPEAT_BEFORE), 0)
        transaction.set_rollback(True)
    results["loadavg_after"] = os.getloadavg()[0]
    return results


def _url(querystring: str, deep: int) -> str:
    """The table URL of a scenario, with the cursors its Next/Previous links would carry."""
    from urllib.parse import parse_qsl

    from django.urls import reverse

    from leads.filters import LeadQuery, leads_page

    if not querystring:
        return reverse("leads:list")
    params = dict(parse_qsl(querystring.replace("={next}", "=").replace("={prev}", "").format(deep=deep)))
    page = int(params.get("page", "1"))
    querystring = querystring.replace("{deep}", str(deep))
    if "{next}" in querystring:
        before = leads_page(LeadQuery.from_params({**params, "page": str(page - 1)}))
        querystring = querystring.replace("{next}", before.cursor("after").to_param())
    if "{prev}" in querystring:
        after = leads_page(LeadQuery.from_params({**params, "page": str(page + 1)}))
        querystring = querystring.replace("{prev}", after.cursor("before").to_param())
    return reverse("leads:list") + "?" + querystring.replace("{deep}", str(deep))


def _time(client, url: str, repeat: int, deep: int) -> dict:
    """p50/p95 wall ms of the HTMX fragment, and the median CPU ms of this process (the view, the
    template and the database driver; PostgreSQL's own work is the rest of the wall time)."""
    client.get(url)  # warm the cache and the connection
    walls, cpus = [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        response = client.get(url, headers={"HX-Request": "true"})
        walls.append((time.perf_counter() - t0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
        assert response.status_code == 200, response.status_code
    if deep:
        assert f"Page {deep:,}<" in response.content.decode(), f"{url}: not page {deep}"
    p95 = statistics.quantiles(walls, n=20)[18] if len(walls) >= 20 else max(walls)
    return {
        "p50_ms": round(statistics.median(walls), 1),
        "p95_ms": round(p95, 1),
        "cpu_ms": round(statistics.median(cpus), 1),
    }


def _indexes_used(connection, client, url: str) -> list[str]:
    """The lead indexes in the plans of the SELECTs one request makes (EXPLAIN of each)."""
    import re

    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        client.get(url, headers={"HX-Request": "true"})
    explain = "EXPLAIN" if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN"
    used: list[str] = []
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            sql = query["sql"]
            if not sql.startswith("SELECT") or '"leads_lead"' not in sql.split(" WHERE ")[0]:
                continue
            cursor.execute(f"{explain} {sql}")
            plan = " ".join(str(cell) for row in cursor.fetchall() for cell in row)
            used += [name for name in re.findall(r"lead_\w+_(?:idx|trgm)", plan) if name not in used]
    return used


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
        from easycrm.testing.export import export_lines_reference
        from leads.filters import LeadQuery, leads_filter

        # Encoded as StreamingHttpResponse would, so both figures include the same work.
        chunks = (line.encode() for line in export_lines_reference(leads_filter(LeadQuery())))
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


def _run(
    db: str, rows: int, data_dir: Path, pg_database: str, *, reuse: bool, export: bool, repeat: int
) -> dict:
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
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [pg_database]).fetchone()
            if not (reuse and exists):
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_database}"')
                conn.execute(f'CREATE DATABASE "{pg_database}"')
        env["DATABASE_URL"] = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{pg_database}"
    else:
        env.pop("DATABASE_URL", None)
    started = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    pages = subprocess.run(
        [sys.executable, __file__, "--child", db, "--rows", str(rows), "--repeat", str(repeat)],
        env=env,
        capture_output=True,
        text=True,
    )
    if pages.returncode:
        sys.exit(f"the {db} pages child failed:\n{pages.stderr[-3000:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(pages.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(time.perf_counter() - started[0], 1)
    result["cpu_s"] = round(usage.ru_utime + usage.ru_stime - started[1].ru_utime - started[1].ru_stime, 1)
    for key, extra in (("export", []), ("export_before", ["--before"])) if export else ():
        export_process = subprocess.Popen(
            [sys.executable, __file__, "--export-child", db, *extra],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        _, status, usage = os.wait4(export_process.pid, 0)
        result[key] = json.loads(export_process.stdout.read().strip().splitlines()[-1])
        result[key]["peak_rss_mb"] = round(usage.ru_maxrss / 1024)
    return result


def _print(result: dict) -> None:
    print(
        f"\n{result['db']}: {result['rows']:,} leads (filled in {result['fill_seconds']} s; pages process"
        f" {result['wall_s']} s wall, {result['cpu_s']} s CPU), deep page = {result['deep_page']:,},"
        f" load average {result['loadavg_before']:.1f} → {result['loadavg_after']:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        f"  {'page (25 rows, HTMX fragment)':52} {'p50 ms':>7} {'p95 ms':>7} {'CPU ms':>7}"
        f" {'before p95':>11} {'CPU':>6}   indexes in the plan"
    )
    for name, page in result["pages"].items():
        before = page.get("before")
        old = f"{before['p95_ms']:11.1f} {before['cpu_ms']:6.1f}" if before else f"{'':11} {'':6}"
        print(
            f"  {name:52} {page['p50_ms']:7.1f} {page['p95_ms']:7.1f} {page['cpu_ms']:7.1f} {old}"
            f"   {', '.join(page['indexes']) or '-'}"
        )
    pages = result["pages"].values()
    worst = max(page["p95_ms"] for page in pages)
    over = [name for name, page in result["pages"].items() if page["p95_ms"] >= PAGE_TARGET_MS]
    print(
        f"  worst p95 {worst:.1f} ms (target < {PAGE_TARGET_MS} ms; over: {', '.join(over) or 'none'})."
        " Before = without the text sort indexes (leads/migrations/0009), deep pages by number."
    )
    if result["db"] == "postgresql":
        print(f"  before issue 13 at 1M on PostgreSQL: deep page {BEFORE_PG['deep page']}")
    for key, label in (("export_before", "export CSV, before"), ("export", "export CSV")):
        if key not in result:
            continue
        export = result[key]
        print(
            f"  {label:19} {export['rows']:,} rows in {export['seconds']} s = {export['rows_per_s']:>7,} rows/s,"
            f" {export['mb']} MB, peak RSS {export['peak_rss_mb']} MB"
        )
    if "export" in result:
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
    parser.add_argument("--repeat", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pg-database", default=PG_BENCH_DATABASE, help="scratch database, dropped first")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the PostgreSQL database if it exists (filled once, migrated)",
    )
    parser.add_argument("--no-export", action="store_true", help="only the table pages")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.rows, args.repeat)))
        return 0
    if args.export_child:
        print(json.dumps(_export_child(args.export_child, args.before)))
        return 0
    sizes = {"sqlite": 20_000 if args.quick else 100_000, "postgresql": 100_000 if args.quick else 1_000_000}
    if args.rows:
        sizes = dict.fromkeys(sizes, args.rows)
    results = []
    for db, rows in sizes.items():
        if args.only and db != args.only:
            continue
        with tempfile.TemporaryDirectory(prefix="easycrm-table-bench-") as tmp:
            result = _run(
                db,
                rows,
                Path(tmp),
                args.pg_database,
                reuse=args.reuse,
                export=not args.no_export,
                repeat=QUICK_REPEAT if args.quick else REPEAT,
            )
        _print(result)
        results.append(result)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
