"""Load test: 40 users browsing, filtering and polling while a 10k-row import runs (issue 12).

    .venv/bin/python bench/load.py              # PostgreSQL, 50k leads, 40 users, 10k-row imports, ~2 min
    .venv/bin/python bench/load.py --quick      # 5k leads, 10 users, 2k-row imports, ~20 s
    .venv/bin/python bench/load.py --db sqlite  # the same against a SQLite file
    .venv/bin/python bench/load.py --pg-database easycrm_mine   # another scratch database (dropped first)

Everything runs on 127.0.0.1 as `make serve` runs it: gunicorn with the documented web settings
(WEB_CONCURRENCY × WEB_THREADS, 4 × 4, keep-alive WEB_KEEPALIVE 5 s), the default task cluster and the
batch cluster, DEBUG off, the ORM broker, the offline standardizer, against a scratch database seeded
with generated leads (bench/table.py's fill) and users in the importer group.

A 10k-row CSV is imported with no user about (idle). Then the users log in (the login form with its
CSRF token) and loop, with a pause of 1–3 s between requests: the lead page, a filter, a sort on it,
its next page (the table's own "Next" link; HTMX fragments, as the page asks for them). Meanwhile a
second CSV of other people is imported and every user polls its status fragment as the page does,
2 s after each answer, until the import ends (HTTP 286). A third file is imported idle after the
users stop: the machine is shared, so the idle figure is the mean of before and after. Every response
is recorded (kind, status, latency). An import's wall time is its job's finished_at − created_at; its
CPU is the two clusters' process trees (reaped children included) plus the PostgreSQL backends of the
scratch database. The run is bounded (300 s; 90 s with --quick): an import still running then is
reported as not done. Printed with them: the web tier's CPU per request, and the database's CPU
under load beyond the idle imports' (the web tier's queries). Results also go to bench/out/load.json.
Exit status 1 on any error (a status other than 200/286, a timeout, a reset connection) or an import
that did not complete every row.
See bench/README.md and docs/reliability.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from run import write_csv  # noqa: E402  (bench/run.py: the seeded generator of lead files)

MANAGE = ROOT / "manage.py"
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PG_LOAD_DATABASE = "easycrm_load_he"
PASSWORD = "load-" + "x" * 20
SEED = 20261201
# make serve's web tier (docs/deployment.md): WEB_CONCURRENCY processes × WEB_THREADS threads.
WEB_CONCURRENCY = int(os.environ.get("WEB_CONCURRENCY", 4))
WEB_THREADS = int(os.environ.get("WEB_THREADS", 4))
# Longer than the status poll's 2 s: with gunicorn's default (2 s) the server closes a kept-alive
# connection just as the page's next poll is sent on it, and the poll fails with a reset.
WEB_KEEPALIVE = int(os.environ.get("WEB_KEEPALIVE", 5))
POLL_SECONDS = 2.0  # hx-trigger="every 2s" of templates/processing/_status.html
THINK_SECONDS = (1.0, 3.0)
REQUEST_TIMEOUT = 30.0
# Issue 12's targets, and the figures measured before it.
TARGETS = {"status_p95_ms": 2000, "list_p95_ms": 1000, "import_ratio": 2.0}
BEFORE = {"status_p95_ms": 2100, "import_ratio": 2.5}
FILTERS = ("company=smith", "last_name=son", "q=ltd+ann", "has_phone=yes", "title=cto", "company=globex")
SORTS = ("company", "-title", "email", "last_name", "-updated_at")
LIST_KINDS = ("list page", "filter", "sort", "next page")
ACTIVE = ("uploading", "uploaded", "processing")
_NEXT = re.compile(r'<a href="([^"]+)"[^>]*rel="next"')
# Settings the developer's shell may carry that would point the app at real services.
_SCRUBBED = (
    "DATABASE_URL",
    "REDIS_URL",
    "MEDIA_ROOT",
    "SECRET_KEY",
    "Q_SYNC",
    "Q_CLUSTER_NAME",
    "SQS_REGION",
)


@dataclass
class Sample:
    kind: str
    status: int
    ms: float
    error: str = ""
    retried: bool = False


@dataclass
class Recorder:
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)


class App:
    """gunicorn and both task clusters, each in its own session, stopped through their leaders."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.processes: dict[str, subprocess.Popen] = {}
        self.url = ""

    def _start(self, name: str, argv: list[str], **extra: str) -> None:
        with (self.logs / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(
                argv,
                cwd=ROOT,
                env={**self.env, **extra},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start(self) -> None:
        self._start("default", [sys.executable, str(MANAGE), "qcluster"])
        self._start("deepseek", [sys.executable, str(MANAGE), "qcluster"], Q_CLUSTER_NAME="deepseek")
        self._start(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "easycrm.wsgi",
                "--bind",
                "127.0.0.1:0",
                "--workers",
                str(WEB_CONCURRENCY),
                "--threads",
                str(WEB_THREADS),
                "--keep-alive",
                str(WEB_KEEPALIVE),
                "--no-control-socket",
                "--graceful-timeout",
                "3",
                "--error-logfile",
                "-",
            ],
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            log = self.log("web")
            found = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", log)
            if found and log.count("Booting worker") >= WEB_CONCURRENCY:
                self.url = found.group(1)
                break
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited {process.returncode}:\n{self.log(name)}")
            time.sleep(0.1)
        else:
            raise RuntimeError(f"gunicorn did not start:\n{self.log('web')}")
        # Wait for both clusters' first heartbeat, so the import does not wait for a worker to boot.
        deadline = time.monotonic() + 60
        health: dict = {}
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited {process.returncode}:\n{self.log(name)}")
            with contextlib.suppress(requests.RequestException, ValueError):
                health = requests.get(self.url + "/healthz", timeout=REQUEST_TIMEOUT).json()
                if all(age is not None for age in health.get("clusters", {}).values()):
                    return
            time.sleep(0.5)
        raise RuntimeError(f"no cluster heartbeat within 60 s: {health}")

    def cpu_seconds(self, *names: str) -> float:
        """User + system CPU of these process trees, including their reaped children."""
        total = 0.0
        for name in names:
            with contextlib.suppress(psutil.NoSuchProcess):
                leader = psutil.Process(self.processes[name].pid)
                for process in [leader, *leader.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        times = process.cpu_times()
                        total += times.user + times.system + times.children_user + times.children_system
        return total

    def stop(self) -> None:
        # SIGTERM to each leader (a signal to a whole qcluster group kills its sentinel first and the
        # leader hangs), then the groups, so nothing outlives the bench.
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


class User(threading.Thread):
    """One person at the lead page: browses with pauses, and polls the running import's status."""

    def __init__(self, app: App, username: str, recorder: Recorder, stop: threading.Event, rng_seed: int):
        super().__init__(name=f"user-{username}", daemon=True)
        self.app, self.username, self.recorder, self.stop = app, username, recorder, stop
        self.rng = random.Random(rng_seed)
        self.session = requests.Session()
        self.job_id: str | None = None
        self.job_event = threading.Event()
        self.logged_in = False

    def login(self) -> None:
        url = self.app.url + "/accounts/login/"
        page = self.session.get(url, timeout=REQUEST_TIMEOUT)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        response = self.session.post(
            url,
            data={"username": self.username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)},
            headers={"Referer": url},
            allow_redirects=False,
            timeout=REQUEST_TIMEOUT,
        )
        if response.status_code != 302 or "sessionid" not in self.session.cookies:
            raise RuntimeError(f"login of {self.username} failed: {response.status_code}")
        self.logged_in = True

    def get(self, kind: str, path: str, *, fragment: bool) -> requests.Response | None:
        """One GET, as a browser sends it: a request the server reset on a kept-alive connection
        before answering is sent once more on a new one (Chromium does the same); counted."""
        headers = {"HX-Request": "true"} if fragment else {}
        started = time.perf_counter()
        retried = False
        while True:
            try:
                response = self.session.get(
                    self.app.url + path, headers=headers, allow_redirects=False, timeout=REQUEST_TIMEOUT
                )
                break
            except requests.ConnectionError as exc:
                if not retried and "Connection aborted" in str(exc):
                    retried = True
                    continue
                error = exc
            except requests.RequestException as exc:
                error = exc
            ms = (time.perf_counter() - started) * 1000
            self.recorder.add(Sample(kind, 0, ms, f"{type(error).__name__}: {error}"[:300], retried))
            return None
        ms = (time.perf_counter() - started) * 1000
        ok = response.status_code in (200, 286)
        self.recorder.add(Sample(kind, response.status_code, ms, "" if ok else response.text[:200], retried))
        return response if ok else None

    def pause(self) -> bool:
        return not self.stop.wait(self.rng.uniform(*THINK_SECONDS))

    def run(self) -> None:
        poller = threading.Thread(target=self.poll, name=f"poll-{self.username}", daemon=True)
        poller.start()
        while not self.stop.is_set():
            self.get("list page", "/", fragment=False)
            if not self.pause():
                break
            query = self.rng.choice(FILTERS)
            self.get("filter", f"/?{query}", fragment=True)
            if not self.pause():
                break
            sorted_ = self.get("sort", f"/?{query}&sort={self.rng.choice(SORTS)}", fragment=True)
            if not self.pause():
                break
            found = _NEXT.search(sorted_.text) if sorted_ is not None else None
            if found:
                self.get("next page", found.group(1).replace("&amp;", "&"), fragment=True)
                if not self.pause():
                    break
        poller.join()

    def poll(self) -> None:
        """As htmx does: the next poll 2 s after the previous answer, until the import ends (286)."""
        while not self.job_event.wait(0.2):
            if self.stop.is_set():
                return
        # Users look at the page at different moments: their polls are spread over the interval.
        if self.stop.wait(self.rng.uniform(0, POLL_SECONDS)):
            return
        while not self.stop.is_set():
            response = self.get("status fragment", f"/imports/{self.job_id}/status/", fragment=True)
            if response is not None and response.status_code == 286:
                return
            self.stop.wait(POLL_SECONDS)


# --- The scratch app ------------------------------------------------------------------------------


def _seed_child(leads: int, users: int) -> dict:
    """In a child with the scratch environment: migrate, leads by bulk SQL, users in the importer group."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "easycrm.settings")
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group
    from django.contrib.auth.models import User as AuthUser
    from django.core.management import call_command
    from django.db import connection
    from table import _fill  # bench/table.py: the same generated leads as the table benchmark

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    migrated = time.perf_counter()
    _fill(connection, leads)
    filled = time.perf_counter()
    password = make_password(PASSWORD)  # hashed once: 40 hashes would take longer than the fill
    created = AuthUser.objects.bulk_create(
        AuthUser(username=f"load-user-{number:02d}", password=password) for number in range(users)
    )
    importer = Group.objects.get(name="importer")
    importer.user_set.add(*AuthUser.objects.filter(username__in=[user.username for user in created]))
    return {"migrate_s": round(migrated - started, 1), "fill_s": round(filled - migrated, 1)}


def _job_child(job_id: str) -> dict:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "easycrm.settings")
    import django

    django.setup()
    from processing.models import ImportJob

    job = ImportJob.objects.get(pk=job_id)
    return {
        "status": job.status,
        "rows": job.total_rows,
        "rows_processed": job.rows_processed,
        "rows_failed": job.rows_failed,
        "created": job.leads_created,
        "updated": job.leads_updated,
        "failed_batches": job.failed_batches,
        "terminal": job.is_terminal,
        "wall_s": (job.finished_at - job.created_at).total_seconds() if job.finished_at else None,
    }


def _child(env: dict[str, str], *args: str, timeout: float = 300) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode:
        raise RuntimeError(f"{' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _queue_import(env: dict[str, str], path: Path) -> str:
    """`manage.py import_leads --queue`: the same import_start as the upload view, handed to the workers."""
    out = subprocess.run(
        [sys.executable, str(MANAGE), "import_leads", "--queue", "--no-progress", str(path)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return out.split()[0]


def _job_state(env: dict[str, str], job_id: str) -> str:
    """The job's status, read with one SQL query (a Django child per poll would load the machine)."""
    url = env["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"), timeout=20)) as conn:
            row = conn.execute(
                "SELECT status FROM processing_importjob WHERE id = ?", [job_id.replace("-", "")]
            ).fetchone()
    else:
        import psycopg

        with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
            row = conn.execute("SELECT status FROM processing_importjob WHERE id = %s", [job_id]).fetchone()
    return row[0] if row else ""


def _import(app: App, env: dict[str, str], path: Path, deadline: float, on_queued=None) -> dict:
    """Queue one import and wait for its end (or the run's deadline): wall time from the job, CPU from
    the clusters' process trees and the database's backends over the same span."""
    cpu_before, machine_before = app.cpu_seconds("default", "deepseek"), psutil.cpu_times()
    db_before = _database_cpu(env)
    job_id = _queue_import(env, path)
    if on_queued is not None:
        on_queued(job_id)
    while _job_state(env, job_id) in ACTIVE and time.monotonic() < deadline:
        time.sleep(0.5)
    cpu = app.cpu_seconds("default", "deepseek") - cpu_before
    machine = psutil.cpu_times()
    busy = (
        sum(machine)
        - machine.idle
        - machine.iowait
        - (sum(machine_before) - machine_before.idle - machine_before.iowait)
    )
    span = sum(machine) - sum(machine_before)
    db_after = _database_cpu(env)
    job = _child(env, "--job-child", job_id)
    job.update(
        cpu_s=round(cpu, 1),
        db_cpu_s=round(sum(db_after.get(pid, 0) - db_before.get(pid, 0) for pid in db_after), 1),
        machine_busy=round(busy / span, 2) if span else None,
        timed_out=not job["terminal"],
        id=job_id,
    )
    return job


def _database_cpu(env: dict[str, str]) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving the scratch database (named in its title)."""
    url = env["DATABASE_URL"]
    if url.startswith("sqlite:"):
        return {}
    name = " " + url.rsplit("/", 1)[1] + " "
    backends = {}
    for process in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if process.info["name"] == "postgres" and name in " ".join(process.info["cmdline"] or ()):
                times = process.cpu_times()
                backends[process.pid] = times.user + times.system
    return backends


def _environment(work: Path, db: str, pg_database: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED}
    env = {key: value for key, value in env.items() if not key.startswith(("DEEPSEEK_", "S3_", "AWS_"))}
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        DATA_DIR=str(work / "data"),
        MEDIA_ROOT=str(work / "media"),
        LOG_LEVEL="WARNING",
        IMPORT_REVIEW="never",  # straight through, as an import with clear headers goes
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="easycrm.settings",
    )
    if db == "postgresql":
        import psycopg

        with psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{pg_database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{pg_database}"')
        env["DATABASE_URL"] = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{pg_database}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{work / 'data' / 'load.sqlite3'}"
    return env


def _drop(db: str, pg_database: str) -> None:
    if db == "postgresql":
        import psycopg

        with psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{pg_database}" WITH (FORCE)')


# --- The run ------------------------------------------------------------------------------------


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "max_ms": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {
        "count": len(values),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(ordered[-1], 1),
    }


def _summarize(samples: list[Sample]) -> dict:
    kinds: dict[str, dict] = {}
    for kind in (*LIST_KINDS, "status fragment"):
        mine = [sample for sample in samples if sample.kind == kind]
        kinds[kind] = {
            **_percentiles([sample.ms for sample in mine]),
            "errors": sum(1 for sample in mine if sample.error),
        }
    listed = [sample for sample in samples if sample.kind in LIST_KINDS]
    kinds["lead list (all four)"] = {
        **_percentiles([sample.ms for sample in listed]),
        "errors": sum(1 for sample in listed if sample.error),
    }
    return kinds


def run(args: argparse.Namespace) -> dict:
    leads, users, rows = args.leads, args.users, args.rows
    work = Path(tempfile.mkdtemp(prefix="easycrm-load-"))
    (work / "logs").mkdir()
    results: dict = {
        "meta": {
            "db": args.db,
            "leads": leads,
            "users": users,
            "import_rows": rows,
            "web": f"{WEB_CONCURRENCY}×{WEB_THREADS}",
            "cpus": os.cpu_count(),
            "loadavg_before": os.getloadavg()[0],
        }
    }
    app: App | None = None
    began = time.perf_counter()
    deadline = time.monotonic() + args.budget
    try:
        env = _environment(work, args.db, args.pg_database)
        results["seed"] = _child(env, "--seed-child", str(leads), "--users", str(users))
        for number, name in enumerate(("idle.csv", "loaded.csv", "idle-after.csv")):
            write_csv(work / name, rows, seed=SEED + number)
        app = App(env, work / "logs")
        app.start()

        results["idle"] = _import(app, env, work / "idle.csv", deadline)

        recorder, stop = Recorder(), threading.Event()
        people = [
            User(app, f"load-user-{number:02d}", recorder, stop, SEED + number) for number in range(users)
        ]
        for person in people:
            person.login()
        web_cpu, client_cpu, load_began = app.cpu_seconds("web"), time.process_time(), time.perf_counter()
        for person in people:
            person.start()
            time.sleep(args.ramp / users)  # a ramp, so the users' requests do not arrive in lockstep

        def announce(job_id: str) -> None:
            for person in people:
                person.job_id = job_id
                person.job_event.set()

        results["loaded"] = _import(app, env, work / "loaded.csv", deadline, on_queued=announce)
        stop.wait(args.tail)  # the last polls see the 286 and stop, as the page does
        stop.set()
        for person in people:
            person.join(timeout=REQUEST_TIMEOUT + 5)
        load_seconds = time.perf_counter() - load_began
        web_cpu = app.cpu_seconds("web") - web_cpu
        client_cpu = time.process_time() - client_cpu
        # Idle once more: the machine is shared, so the idle figure is the mean of before and after.
        results["idle_after"] = _import(app, env, work / "idle-after.csv", deadline)
        samples = recorder.samples
        results["load"] = {
            "seconds": round(load_seconds, 1),
            "requests": len(samples),
            "requests_per_s": round(len(samples) / load_seconds, 1),
            "web_cpu_s": round(web_cpu, 1),
            "client_cpu_s": round(client_cpu, 1),
            "kinds": _summarize(samples),
            "errors": [
                {"kind": sample.kind, "status": sample.status, "error": sample.error}
                for sample in samples
                if sample.error
            ][:20],
            "error_count": sum(1 for sample in samples if sample.error),
            "retried_resets": sum(1 for sample in samples if sample.retried),
            "polls_stopped_by_286": sum(1 for sample in samples if sample.status == 286),
        }
    except BaseException:
        results["failed"] = True
        raise
    finally:
        if app is not None:
            app.stop()
        if results.get("failed") or results.get("load", {}).get("error_count"):
            # The servers' logs say why: kept in bench/out/ (git-ignored), the rest is removed.
            logs = ROOT / "bench" / "out" / "load-logs"
            shutil.rmtree(logs, ignore_errors=True)
            shutil.copytree(work / "logs", logs)
            print(f"logs in {logs}")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(Exception):
                _drop(args.db, args.pg_database)
        else:
            print(f"kept {work}")
    results["meta"]["loadavg_after"] = os.getloadavg()[0]
    results["meta"]["seconds"] = round(time.perf_counter() - began, 1)
    return results


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _held(ok: bool) -> str:
    return "held" if ok else "MISSED"


def report(results: dict) -> bool:
    """Print the figures next to their targets; True when nothing failed (errors, imports)."""
    meta, load = results["meta"], results["load"]
    idle, loaded = results["idle"], results["loaded"]
    print(
        f"\nLoad: {meta['users']} users, {meta['leads']:,} leads, imports of {meta['import_rows']:,} rows,"
        f" {meta['db']}, gunicorn {meta['web']}, ORM broker — {meta['cpus']} CPUs, load avg"
        f" {meta['loadavg_before']:.2f} before / {meta['loadavg_after']:.2f} after, {meta['seconds']} s in all"
    )
    per_request = 1000 * load["web_cpu_s"] / load["requests"] if load["requests"] else 0
    print(
        f"  {load['requests']:,} requests in {load['seconds']} s ({load['requests_per_s']}/s);"
        f" CPU: web {load['web_cpu_s']} s ({per_request:.1f} ms a request), bench client {load['client_cpu_s']} s"
    )
    print(f"  {'request':24} {'count':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}   target")
    kinds = load["kinds"]
    for kind, figures in kinds.items():
        target = ""
        if kind == "status fragment":
            ok = figures["p95_ms"] is not None and figures["p95_ms"] < TARGETS["status_p95_ms"]
            target = (
                f"p95 < {TARGETS['status_p95_ms']:,} ms (before: {BEFORE['status_p95_ms']:,}): {_held(ok)}"
            )
        elif kind == "lead list (all four)":
            ok = figures["p95_ms"] is not None and figures["p95_ms"] < TARGETS["list_p95_ms"]
            target = f"p95 < {TARGETS['list_p95_ms']:,} ms: {_held(ok)}"
        print(
            f"  {kind:24} {figures['count']:6,} {figures['errors']:6} {_ms(figures['p50_ms']):>8}"
            f" {_ms(figures['p95_ms']):>8} {_ms(figures['max_ms']):>8}   {target}"
        )
    after = results["idle_after"]
    idle_walls = [job["wall_s"] for job in (idle, after) if job["wall_s"]]
    idle_wall = statistics.mean(idle_walls) if idle_walls else None
    ratio = loaded["wall_s"] / idle_wall if idle_wall and loaded["wall_s"] else None
    idle_cpu = statistics.mean(job["cpu_s"] for job in (idle, after))
    cpu_ratio = loaded["cpu_s"] / idle_cpu if idle_cpu else None
    results["import_ratio"] = round(ratio, 2) if ratio else None
    results["import_cpu_ratio"] = round(cpu_ratio, 2) if cpu_ratio else None
    for label, job in (("import, idle", idle), ("import, under load", loaded), ("import, idle again", after)):
        wall = f"{job['wall_s']:.1f} s" if job["wall_s"] else "not finished"
        database = f", database {job['db_cpu_s']} s" if meta["db"] == "postgresql" else ""
        print(
            f"  {label:24} {job['status']:>10}: {wall} wall, CPU clusters {job['cpu_s']} s{database},"
            f" machine {job['machine_busy']:.0%} busy;"
            f" {job['rows_processed']:,} of {job['rows']:,} rows, {job['created']:,} created,"
            f" {job['updated']:,} updated, {job['rows_failed']} failed"
        )
    if meta["db"] == "postgresql":
        # The web tier's queries run in the same database: its CPU beyond the idle imports' is theirs.
        extra = loaded["db_cpu_s"] - statistics.mean(job["db_cpu_s"] for job in (idle, after))
        print(
            f"  {'database CPU under load':24} {extra:+.1f} s over the idle imports' (the web tier's queries)"
        )
    ratio_text = f"{ratio:.2f}×" if ratio else "—"
    cpu_text = f"{cpu_ratio:.2f}×" if cpu_ratio else "—"
    print(
        f"  {'import under load / idle':24} {ratio_text:>10}   target < {TARGETS['import_ratio']:g}×"
        f" (before: {BEFORE['import_ratio']:g}×): {_held(bool(ratio) and ratio < TARGETS['import_ratio'])};"
        f" the clusters' CPU {cpu_text}"
    )
    errors = load["error_count"]
    print(
        f"  errors: {errors}; requests sent again after a reset on a kept-alive connection, as a browser"
        f" does: {load['retried_resets']}" + (f" — first errors: {load['errors'][:3]}" if errors else "")
    )
    completed = all(
        job["status"] == "completed" and not job["timed_out"] and job["rows_processed"] == job["rows"]
        for job in (idle, loaded, after)
    )
    return errors == 0 and completed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5k leads, 10 users, 2k-row imports: < 60 s")
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--pg-database", default=PG_LOAD_DATABASE, help="scratch database, dropped first")
    parser.add_argument("--users", type=int)
    parser.add_argument("--leads", type=int)
    parser.add_argument("--rows", type=int, help="rows of each imported file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) and the database")
    parser.add_argument("--seed-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--job-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed_child is not None:
        print(json.dumps(_seed_child(args.seed_child, args.users)))
        return 0
    if args.job_child:
        print(json.dumps(_job_child(args.job_child)))
        return 0
    quick = args.quick
    args.users = args.users or (10 if quick else 40)
    args.leads = args.leads or (5_000 if quick else 50_000)
    args.rows = args.rows or (2_000 if quick else 10_000)
    # The bound of the whole run: an import still running then is stopped and reported as not done.
    args.budget = 90.0 if quick else 300.0
    args.ramp = 2.0 if quick else 5.0
    args.tail = 3.0
    results = run(args)
    ok = report(results)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "load.json").write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
