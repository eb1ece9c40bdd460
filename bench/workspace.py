"""The lead workspace at scale (PostgreSQL, 1M leads): table pages with status/owner filters, a bulk
action on 10,000 selected leads, and the insights page with each of its aggregate queries.

    .venv/bin/python bench/workspace.py              # 1M leads in the database easycrm_bench_workspace
    .venv/bin/python bench/workspace.py --rows 100000

Runs in a child process against a scratch PostgreSQL database (dropped and re-created), filled by the
same bulk SQL as bench/table.py, then given statuses (a quarter each) and owners (a third of the leads,
three users). Pages go through Django's test client as a logged-in importer, so the figures include the
view, the queries and the template.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgres://postgres@127.0.0.1:5432/easycrm_bench_workspace"
REPEAT = 20


def _child(rows: int) -> dict:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "easycrm.settings")
    import django

    django.setup()
    from django.contrib.auth.models import Group, Permission, User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    from bench.table import _fill
    from leads import insights
    from leads.editing import leads_edited_fields
    from leads.models import Lead, LeadChange

    setup_test_environment()
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    _fill(connection, rows)
    owners = [User.objects.create_user(f"owner{i}") for i in range(3)]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE leads_lead SET status = (ARRAY['new','contacted','qualified','unqualified'])[1 + id %% 4],"
            " owner_id = CASE WHEN id %% 3 = 0 THEN (ARRAY[%s,%s,%s]::int[])[1 + (id / 3) %% 3] END",
            [owner.pk for owner in owners],
        )
        cursor.execute("VACUUM ANALYZE leads_lead")
    fill_seconds = time.perf_counter() - started
    user = User.objects.create_user("bench-importer")
    user.groups.add(Group.objects.get(name="importer"))
    user.user_permissions.add(*Permission.objects.filter(codename__in=["change_lead", "delete_lead"]))
    client = Client()
    client.force_login(user)
    owner = owners[0].pk
    scenarios = {
        "status=qualified": "status=qualified",
        "owner=<user>": f"owner={owner}",
        "owner=none + sort owner": "owner=none&sort=owner",
        "status + owner + sort -status": f"status=contacted&owner={owner}&sort=-status",
        "status + company filter": "status=new&company=smith",
    }
    results: dict = {"rows": Lead.objects.count(), "fill_seconds": round(fill_seconds, 1), "pages": {}}
    for name, query in scenarios.items():
        url = f"{reverse('leads:list')}?{query}"
        client.get(url, headers={"HX-Request": "true"})
        timings = []
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            response = client.get(url, headers={"HX-Request": "true"})
            timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
        results["pages"][name] = {
            "p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(statistics.quantiles(timings, n=20)[18], 1),
        }
    # Bulk: 10,000 leads selected through "all matching" (a worksheet filter), confirmed.
    ids = list(Lead.objects.order_by("id").values_list("id", flat=True)[:10_000])
    first, last = ids[0], ids[-1]
    Lead.objects.filter(id__gte=first, id__lte=last).update(worksheet="bulk-bench")
    selection = "worksheet=bulk-bench"
    bulk = {}
    for action, extra in (("status", {"status": "qualified"}), ("owner", {"owner": str(owners[1].pk)})):
        data = {"action": action, "all_matching": "1", "query": selection, "confirmed": "1", **extra}
        t0 = time.perf_counter()
        response = client.post(reverse("leads:bulk"), data)
        bulk[action] = round((time.perf_counter() - t0) * 1000)
        assert response.status_code == 302, response.status_code
    bulk["changes_recorded"] = LeadChange.objects.count()
    t0 = time.perf_counter()
    leads_edited_fields(ids[:10])
    bulk["leads_edited_fields_10_leads_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    results["bulk_10k_ms"] = bulk
    # Insights: the page, and each query alone.
    queries = {}
    for name, function in (
        ("per day", insights._per_day),
        ("per week", insights._per_week),
        ("by source file", lambda: insights._top("source_file", "source", "")),
        ("top companies", lambda: insights._top("company", "company", "")),
        ("top email domains", insights._top_domains),
        ("top titles", lambda: insights._top("title", "title", "")),
        ("completeness", insights.completeness),
    ):
        t0 = time.perf_counter()
        function()
        queries[name] = round((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    assert client.get(reverse("leads:insights")).status_code == 200
    queries["whole page (first view)"] = round((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    assert client.get(reverse("leads:insights")).status_code == 200
    queries["whole page (cached)"] = round((time.perf_counter() - t0) * 1000)
    results["insights_ms"] = queries
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.rows)))
        return 0
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS easycrm_bench_workspace")
        conn.execute("CREATE DATABASE easycrm_bench_workspace")
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "bench-" + "x" * 40,
        "DATABASE_URL": PG_URL,
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    child = subprocess.run(
        [sys.executable, __file__, "--child", "--rows", str(args.rows)],
        env=env,
        capture_output=True,
        text=True,
    )
    if child.returncode:
        print(child.stderr[-4000:])
        return 1
    result = json.loads(child.stdout.strip().splitlines()[-1])
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "workspace.json").write_text(json.dumps(result, indent=2))
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS easycrm_bench_workspace")
    return 0


if __name__ == "__main__":
    sys.exit(main())
