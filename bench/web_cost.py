"""What one request of each kind bench/load.py sends costs the web tier: Python CPU, SQL statements and
their time, per request (issue 12, "Load").

    .venv/bin/python bench/web_cost.py                       # PostgreSQL, 50k leads, 20 requests per kind
    .venv/bin/python bench/web_cost.py --profile "status fragment"   # + cProfile's top functions of a kind
    .venv/bin/python bench/web_cost.py --pg-database easycrm_mine --repeat 40

A scratch PostgreSQL database (`easycrm_web_cost`, dropped first and at the end) gets the same 50,000
generated leads and importer users as bench/load.py, and one import in progress (its batches queued,
as a running import's are). The requests go through Django's test client in this process, DEBUG off,
logged in as one of the users: the full lead page, each of bench/load.py's filters (HTMX fragments), a
sort on them, the next page through the table's own "Next" link, and the import's status fragment.
Per kind: the median wall time and CPU time of this process (the view, the middleware, the template;
the database's share is the SQL time), the mean number of statements sent and their median time. Each kind is requested
once before the measurement (connection, caches of the process warm, as in a running worker).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import re
import secrets
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
_NEXT = re.compile(r'<a href="([^"]+)"[^>]*rel="next"')


class SqlTimer:
    """connection.execute_wrapper: counts the statements and sums their time."""

    def __init__(self) -> None:
        self.statements, self.seconds = 0, 0.0
        self.texts: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - started
            self.seconds += elapsed
            self.statements += 1
            self.texts.append(f"{elapsed * 1000:6.1f} ms  {sql}")


def _setup(database: str, leads: int) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    work = Path(tempfile.mkdtemp(prefix="easycrm-web-cost-"))
    os.environ.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="testserver",
        DATA_DIR=str(work / "data"),
        MEDIA_ROOT=str(work / "media"),
        LOG_LEVEL="WARNING",
        DATABASE_URL=f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{database}",
        DJANGO_SETTINGS_MODULE="easycrm.settings",
    )
    for name in ("REDIS_URL", "Q_SYNC", "Q_CLUSTER_NAME"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from load import _seed_child

    _seed_child(leads, 40)


def _running_import(user):
    """An import in progress: 1,000 batches, a fifth of them done, the rest queued."""
    from django.utils import timezone

    from processing.models import ImportBatch, ImportJob

    job = ImportJob.objects.create(
        original_filename="loaded.csv",
        size=1_234_567,
        uploaded_by=user,
        status=ImportJob.Status.PROCESSING,
        stage="Standardizing…",
        total_rows=10_000,
        total_batches=1_000,
        completed_batches=200,
        leads_created=1_500,
        leads_updated=500,
        started_at=timezone.now() - timedelta(seconds=4),
    )
    ImportBatch.objects.bulk_create(
        ImportBatch(
            job=job,
            batch_number=number,
            total_batches=1_000,
            source_file="loaded.csv",
            status=ImportBatch.Status.DONE if number < 200 else ImportBatch.Status.QUEUED,
            rows=[],
        )
        for number in range(1_000)
    )
    return job


def _measure(client, kind: str, paths: list[str], repeat: int, profile: bool) -> dict:
    from django.db import connection

    fragment = kind != "list page"
    headers = {"HX-Request": "true"} if fragment else {}
    for path in paths:  # warm: the connection, the templates, the process's caches
        assert client.get(path, headers=headers).status_code in (200, 286), path
    walls, cpus, statements, sql = [], [], [], []
    profiler = cProfile.Profile() if profile else None
    slow: dict[str, list[str]] = {}
    for number in range(repeat):
        path = paths[number % len(paths)]
        timer = SqlTimer()
        with connection.execute_wrapper(timer):
            if profiler:
                profiler.enable()
            cpu, wall = time.process_time(), time.perf_counter()
            response = client.get(path, headers=headers)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if profiler:
                profiler.disable()
        assert response.status_code in (200, 286), (path, response.status_code)
        walls.append(wall * 1000)
        cpus.append(cpu * 1000)
        statements.append(timer.statements)
        sql.append(timer.seconds * 1000)
        slow[path] = [text for text in timer.texts if float(text.split()[0]) >= 1.0]
    result = {
        "wall_ms": round(statistics.median(walls), 1),
        "cpu_ms": round(statistics.median(cpus), 1),
        "statements": round(statistics.mean(statements), 1),
        "sql_ms": round(statistics.median(sql), 1),
        "bytes": len(response.content),
        "slow_statements": {path: [text[:170] for text in texts] for path, texts in slow.items()},
    }
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)
        result["profile"] = out.getvalue()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-database", default="easycrm_web_cost", help="scratch database, dropped first")
    parser.add_argument("--leads", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--profile", action="append", default=[], help="a kind to profile (cProfile)")
    parser.add_argument("--statements", action="store_true", help="print the statements of 1 ms or more")
    args = parser.parse_args()
    _setup(args.pg_database, args.leads)
    try:
        from django.contrib.auth.models import User
        from django.test import Client
        from load import FILTERS, SORTS

        user = User.objects.get(username="load-user-00")
        job = _running_import(user)
        client = Client()
        client.force_login(user)
        sorted_paths = [f"/?{query}&sort={sort}" for query, sort in zip(FILTERS, SORTS * 2, strict=False)]
        next_paths = []
        for path in sorted_paths:
            found = _NEXT.search(client.get(path, headers={"HX-Request": "true"}).content.decode())
            if found:
                next_paths.append(found.group(1).replace("&amp;", "&"))
        kinds = {
            "list page": ["/"],
            "filter": [f"/?{query}" for query in FILTERS],
            "sort": sorted_paths,
            "next page": next_paths,
            "status fragment": [f"/imports/{job.pk}/status/"],
        }
        print(f"Web tier cost per request: {args.leads:,} leads, PostgreSQL, DEBUG off, {args.repeat} each")
        print(f"  {'request':18} {'wall ms':>8} {'CPU ms':>8} {'SQL':>5} {'SQL ms':>7} {'bytes':>8}")
        results = {}
        for kind, paths in kinds.items():
            figures = _measure(client, kind, paths, args.repeat, kind in args.profile)
            results[kind] = figures
            print(
                f"  {kind:18} {figures['wall_ms']:8.1f} {figures['cpu_ms']:8.1f}"
                f" {figures['statements']:5.1f} {figures['sql_ms']:7.1f} {figures['bytes']:8,}"
            )
        for kind, figures in results.items():
            if args.statements:
                print(f"\n{kind}, statements of 1 ms or more:")
                for path, texts in figures["slow_statements"].items():
                    print(f"  {path}\n    " + "\n    ".join(texts))
            if "profile" in figures:
                print(f"\n{kind}:\n{figures['profile']}")
    finally:
        from django.db import connections

        connections.close_all()
        import psycopg

        with (
            contextlib.suppress(Exception),
            psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True) as conn,
        ):
            conn.execute(f'DROP DATABASE IF EXISTS "{args.pg_database}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
