"""Benchmarks of the real import pipeline, each figure printed next to its baseline or target.

    .venv/bin/python bench/run.py            # full sizes (100k rows), a few minutes
    .venv/bin/python bench/run.py --quick    # small sizes, for the CI smoke run
    .venv/bin/python bench/run.py --formats  # only CSV 10k/100k/200k vs the same 100k rows as XLSX

Every import runs `manage.py import_leads FILE` in a fresh subprocess against a fresh SQLite
database in a temporary DATA_DIR (never the developer's var/), so the figures include Django start-up,
parsing, splitting into batches, standardizing and upserting. Peak RSS is that subprocess's own
(`wait4` rusage, taken by a small wrapper process so the bench's own memory does not leak into it).
Input files are generated with a seeded random generator. Results go to stdout as a table and to
bench/out/results.json. Exit status 1 when an import did not complete (including a timeout) or the
fake DeepSeek server saw more than DEEPSEEK_CONCURRENCY calls at once. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
PYTHON = sys.executable
SEED = 20260301

# Figures from the design notes ("Facts already measured here") (2 cores, Python 3.11, 100k rows).
DESIGN_FACTS = {
    "xlsx_pandas_calamine_s": 1.44,
    "xlsx_openpyxl_read_only_s": 9.7,
    "xlsx_calamine_direct_s": 0.72,
    "csv_pandas_c_engine_s": 0.04,
}
DEEPSEEK_LATENCY_S = 1.0
# Column mode sends a few rows of some batches: a shorter latency keeps its 100k-row run to minutes.
COLUMN_MODE_LATENCY_S = 0.2
DEEPSEEK_CONCURRENCY = 5
RSS_RATIO_TARGET = 1.5
# Issue 13, measured by --formats: peak RSS of 10k/100k/200k rows within 1.3x, XLSX within 1.5x of CSV.
RSS_FLAT_TARGET = 1.3
XLSX_CSV_TARGET = 1.5
# DEBUG=1 by default (no SECRET_KEY needed). With DEBUG on, Django keeps the last 9,000 SQL statements
# of each connection in memory (connection.queries_log), which costs time and RSS; --no-debug measures
# the production setting instead (DEBUG off, a throwaway SECRET_KEY).
DJANGO_MODE = {"DEBUG": "1"}

# Settings the developer's shell may carry that would point the subprocess at real services.
_SCRUBBED_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "MEDIA_ROOT",
    "S3_BUCKET",
    "SECRET_KEY",
    "LEAD_BATCH_SIZE",
    "MAX_UPLOAD_MB",
    "MAX_IMPORT_ROWS",
    "Q_SYNC",
    "LOG_LEVEL",
)


# --- Input data ---------------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    """Space-separated names; "_" joins the words of one name ("Van_der_Berg")."""
    return tuple(word.replace("_", " ") for word in text.split())


FIRST_NAMES = _words(
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard "
    "Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony Betty Mark "
    "Sandra Emma Lukas Sophie Jonas Léa Hugo Chloé Louis Zoë Mateo Sofía Lucía Martín Giulia "
    "Alessandro Francesca Łukasz Zofia Søren Ingrid Björn Ana João Chen Wei Yuki Haruto Priya Arjun "
    "Fatima Omar Aisha Mohammed Olga Dmitri Siobhan Seán Niamh"
)
LAST_NAMES = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Thompson White Harris Clark "
    "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Dubois Lefèvre Moreau Laurent "
    "Fernández Gómez Díaz Rossi Russo Bianchi Ferrari Esposito Kowalski Nowak Wiśniewski Jensen "
    "Nielsen Andersson Johansson Silva Santos Wang Li Zhang Tanaka Suzuki Sato Patel Sharma Khan "
    "Ivanova Petrov O'Brien O'Connor McCarthy Van_der_Berg De_Jong"
)
TITLES = (
    "CEO",
    "Chief Executive Officer",
    "CTO",
    "cfo",
    "VP Sales",
    "Vice President, Marketing",
    "Head of Procurement",
    "head of it",
    "Sales Manager",
    "SALES DIRECTOR",
    "Account Executive",
    "Purchasing Manager",
    "Operations Manager",
    "Office Manager",
    "Software Engineer",
    "Senior Buyer",
    "Geschäftsführer",
    "Directeur commercial",
    "Responsable achats",
    "Jefe de ventas",
    "Founder & CEO",
    "Owner",
    "n/a",
    "",
)
COMPANY_STEMS = _words(
    "Acme Contoso Globex Initech Umbrella Hooli Vandelay Stark Wayne Wonka Tyrell Cyberdyne Soylent "
    "Gringotts Oceanic Massive_Dynamic Aperture Blue_Sun Nakatomi Virtucon Monarch Sterling Pied_Piper "
    "Dunder_Mifflin Bluth Prestige_Worldwide Nordwind Alpenblick Rheinland Lumière Soleil "
    "Iberia Toscana Baltic Fjord Sakura Lotus Atlas Orion Zenith Summit Harbor Pinnacle Crescent"
)
COMPANY_SUFFIXES = ("Inc.", "Inc", "LLC", "Ltd", "GmbH", "AG", "S.A.", "SARL", "S.p.A.", "Corp.", "Group", "")
COMPANY_KINDS = ("", "", "Logistics", "Software", "Foods", "Industries", "Consulting", "Medical", "Energy")
DOMAIN_TLDS = ("com", "com", "com", "de", "fr", "es", "it", "co.uk", "io", "net")
NOTES = (
    "",
    "",
    "",
    "",
    "Met at trade fair",
    "Call back next quarter",
    "Interested in premium plan",
    "Referred by J. Smith",
    "Do not call before 10am",
    "Budget approved",
)

# Column layouts seen in real exports: (header row, how a person fills it).
LAYOUTS: dict[str, list[str]] = {
    "en": ["First Name", "Last Name", "Job Title", "Company", "Email", "Phone", "Notes"],
    "full": ["Full Name", "Position", "Organization", "E-mail Address", "Telephone", "Comments"],
    "de": ["Vorname", "Nachname", "Position", "Firma", "E-Mail", "Telefon"],
}


def _ascii(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", text.lower())


def _phone(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.08:
        return ""
    if roll < 0.09:
        return rng.choice(("call reception", "see website", "N/A", "tbd"))
    area = rng.randint(201, 989)
    mid = rng.randint(200, 999)
    last = rng.randint(0, 9999)
    country = rng.random()
    if country < 0.55:  # US
        return rng.choice(
            (
                f"({area}) {mid}-{last:04d}",
                f"{area}-{mid}-{last:04d}",
                f"{area}.{mid}.{last:04d}",
                f"+1 {area} {mid} {last:04d}",
                f"1-{area}-{mid}-{last:04d}",
                f"{area}{mid}{last:04d}",
                f"+1 ({area}) {mid}-{last:04d} ext. {rng.randint(1, 999)}",
            )
        )
    if country < 0.8:  # Germany
        city = rng.choice(("30", "40", "69", "89", "221"))
        number = rng.randint(1_000_000, 9_999_999)
        return rng.choice(
            (f"+49 {city} {number}", f"0049 {city} {number}", f"0{city}/{number}", f"+49 (0){city} {number}")
        )
    if country < 0.92:  # United Kingdom
        number = rng.randint(1000, 9999)
        return rng.choice((f"+44 20 7946 {number}", f"020 7946 {number}", f"+44 (0)20 7946 {number}"))
    number = rng.randint(10_000_000, 99_999_999)  # France
    return rng.choice((f"+33 1 {number}", f"01 {str(number)[:2]} {str(number)[2:4]} {str(number)[4:]}"))


def _messy_case(rng: random.Random, text: str) -> str:
    roll = rng.random()
    if roll < 0.05:
        return text.upper()
    if roll < 0.10:
        return text.lower()
    if roll < 0.13:
        return f"  {text} "
    return text


def people(rng: random.Random, count: int):
    """`count` people as dicts: ~5% reuse an earlier email (case/space variants), ~3% none or junk."""
    emails: list[str] = []
    for number in range(count):
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        stem = rng.choice(COMPANY_STEMS)
        company = " ".join(
            part for part in (stem, rng.choice(COMPANY_KINDS), rng.choice(COMPANY_SUFFIXES)) if part
        )
        roll = rng.random()
        if roll < 0.05 and emails:
            earlier = rng.choice(emails)
            email = rng.choice((earlier.upper(), earlier.capitalize(), f" {earlier} ", earlier))
        elif roll < 0.07:
            email = ""
        elif roll < 0.08:
            email = rng.choice((f"{_ascii(first)} at {_ascii(stem)} dot com", "n/a", f"{_ascii(last)}@"))
        else:
            domain = f"{_ascii(stem)}.{rng.choice(DOMAIN_TLDS)}"
            local = rng.choice((f"{_ascii(first)}.{_ascii(last)}", f"{_ascii(first)[:1]}{_ascii(last)}"))
            email = f"{local}{number}@{domain}"
            emails.append(email)
            if rng.random() < 0.1:
                email = email.replace(local, local.title(), 1)
        yield {
            "first": _messy_case(rng, first),
            "last": _messy_case(rng, last),
            "title": rng.choice(TITLES),
            "company": _messy_case(rng, company) if rng.random() > 0.02 else "",
            "email": email,
            "phone": _phone(rng),
            "note": rng.choice(NOTES),
        }


def _cells(layout: str, person: dict, rng: random.Random) -> list[str]:
    if layout == "en":
        return [person[key] for key in ("first", "last", "title", "company", "email", "phone", "note")]
    if layout == "de":
        return [person[key] for key in ("first", "last", "title", "company", "email", "phone")]
    first, last = person["first"].strip(), person["last"].strip()
    full = f"{last}, {first}" if rng.random() < 0.2 else f"{first} {last}"
    return [full, person["title"], person["company"], person["email"], person["phone"], person["note"]]


def write_csv(path: Path, rows: int, *, seed: int, title_line: bool = True) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        if title_line:
            writer.writerow(["Leads export from old CRM (trade fair 2026)"])
        writer.writerow(LAYOUTS["en"])
        for person in people(rng, rows):
            writer.writerow(_cells("en", person, rng))


def write_xlsx(path: Path, rows: int, *, seed: int) -> None:
    """Two worksheets with different column names; the first has a title line above its header."""
    from openpyxl import Workbook

    rng = random.Random(seed)
    workbook = Workbook(write_only=True)
    first_sheet = rows * 6 // 10
    sheets = [("Contacts", "full", first_sheet, True), ("Kontakte", "de", rows - first_sheet, False)]
    generated = people(rng, rows)
    for name, layout, count, title_line in sheets:
        sheet = workbook.create_sheet(name)
        if title_line:
            sheet.append(["Contacts — exported 2026-03-01"])
        sheet.append(LAYOUTS[layout])
        for _ in range(count):
            sheet.append(_cells(layout, next(generated), rng))
    workbook.save(path)


def write_xlsx_like_csv(path: Path, rows: int, *, seed: int) -> None:
    """The rows write_csv writes with the same seed, title line included, as one worksheet: the file
    whose import time compares with the CSV's."""
    from openpyxl import Workbook

    rng = random.Random(seed)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Leads")
    sheet.append(["Leads export from old CRM (trade fair 2026)"])
    sheet.append(LAYOUTS["en"])
    for person in people(rng, rows):
        sheet.append(_cells("en", person, rng))
    workbook.save(path)


# --- Running the pipeline -------------------------------------------------------------------------


@dataclass
class ChildRun:
    returncode: int
    seconds: float
    peak_rss_mb: float
    stdout: str
    stderr_tail: str
    timed_out: bool = False
    cpu_seconds: float = 0.0  # user + system time of the command itself


@dataclass
class ImportRun:
    label: str
    file: str
    file_mb: float
    rows: int
    seconds: float
    leads_per_s: float
    peak_rss_mb: float
    completed: bool
    status: str = ""
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed_batches: int = 0
    llm_calls: int = 0
    migrate_seconds: float = 0.0
    timed_out: bool = False
    rows_done: int = 0  # from the database: created + updated + skipped + failed rows
    # Batch throughput over the run (from each batch's finished_at): does it hold up as the table grows?
    first_tenth_leads_per_s: float = 0.0
    last_tenth_leads_per_s: float = 0.0
    cpu_seconds: float = 0.0  # user + system time of the import command
    error: str = ""


_SUMMARY = re.compile(
    r": (?P<status>[a-z ]+): (?P<rows>\d+) rows, (?P<created>\d+) created, (?P<updated>\d+) updated, "
    r"(?:(?P<unchanged>\d+) unchanged, )?(?P<skipped>\d+) skipped, (?P<failed>\d+) failed batches, "
    r"(?P<calls>\d+) LLM calls"
)


# A process forked from this one would inherit our RSS high-water mark across exec (Linux keeps the
# maximum in the process's signal struct), so every command runs under this small wrapper in a fresh
# interpreter: it spawns the command, waits for it and writes the command's own rusage to a file.
# SIGTERM (sent to the whole process group on timeout) stops the command but not the wrapper.
_RSS_WRAPPER = """
import json, os, signal, sys
report, argv = sys.argv[1], sys.argv[2:]
signal.signal(signal.SIGTERM, signal.SIG_IGN)
pid = os.posix_spawn(argv[0], argv, os.environ, setsigdef=(signal.SIGTERM,))
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as file:
    json.dump({"maxrss_kb": usage.ru_maxrss, "exit": os.waitstatus_to_exitcode(status),
               "cpu_s": usage.ru_utime + usage.ru_stime}, file)
"""


def run_child(argv: list[str], env: dict[str, str], logs: Path, timeout: float | None = None) -> ChildRun:
    """Run one command in a fresh process and measure its own peak RSS (see _RSS_WRAPPER).

    After `timeout` seconds the command is terminated (killed 10 s later) and marked timed out.
    """
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path, report_path = logs / "stdout.txt", logs / "stderr.txt", logs / "rusage.json"
    wrapped = [PYTHON, "-I", "-S", "-c", _RSS_WRAPPER, str(report_path), *argv]
    timed_out = False
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            wrapped,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = started + timeout if timeout else None
        while process.poll() is None:
            now = time.perf_counter()
            if deadline is not None and now > deadline:
                if not timed_out:
                    timed_out = True
                    os.killpg(process.pid, signal.SIGTERM)
                    deadline = now + 10
                else:
                    os.killpg(process.pid, signal.SIGKILL)
                    deadline = None
            time.sleep(0.05)
        seconds = time.perf_counter() - started
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError):
        report = {"maxrss_kb": 0, "exit": process.returncode}
    stderr = err_path.read_text(errors="replace").splitlines()
    return ChildRun(
        returncode=report["exit"],
        seconds=seconds,
        peak_rss_mb=report["maxrss_kb"] / 1024,  # Linux reports kilobytes
        stdout=out_path.read_text(errors="replace"),
        stderr_tail="\n".join(stderr[-15:]),
        timed_out=timed_out,
        cpu_seconds=report.get("cpu_s", 0.0),
    )


def db_progress(database: Path) -> dict:
    """Rows accounted for and the batch throughput at the start and the end of the run."""
    if not database.exists():
        return {}
    connection = sqlite3.connect(database, timeout=20)
    try:
        job = connection.execute(
            "SELECT leads_created, leads_updated, rows_skipped, rows_failed, rows_unchanged FROM processing_importjob"
        ).fetchone()
        stamps = [
            dt.datetime.fromisoformat(value)
            for (value,) in connection.execute(
                "SELECT finished_at FROM processing_importbatch WHERE status = 'done' ORDER BY finished_at"
            )
        ]
        sizes = connection.execute(
            "SELECT COUNT(*), SUM(json_array_length(rows)) FROM processing_importbatch"
        )
        batches, rows = sizes.fetchone()
    finally:
        connection.close()
    per_batch = (rows or 0) / batches if batches else 0
    result = {"rows_done": sum(job) if job else 0}
    if job:
        result.update(created=job[0], updated=job[1], skipped=job[2])

    def rate(window: list[dt.datetime]) -> float:
        seconds = (window[-1] - window[0]).total_seconds()
        return round((len(window) - 1) * per_batch / seconds, 1) if seconds > 0 else 0.0

    tenth = max(2, len(stamps) // 10)
    if len(stamps) >= 4:
        result["first_tenth_leads_per_s"] = rate(stamps[:tenth])
        result["last_tenth_leads_per_s"] = rate(stamps[-tenth:])
    return result


def child_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _SCRUBBED_ENV and not key.startswith(("DEEPSEEK_", "S3_", "AWS_"))
    }
    env.update(DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="easycrm.settings")
    env.update(DJANGO_MODE)
    env.update(extra)
    return env


def import_file(
    label: str, path: Path, rows: int, work: Path, timeout: float | None = None, **extra_env: str
) -> ImportRun:
    """Migrate a fresh database, then time `manage.py import_leads path` in its own process."""
    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=work))
    env = child_env(data_dir, **extra_env)
    migrate = run_child([PYTHON, "manage.py", "migrate", "--noinput"], env, data_dir / "logs-migrate")
    result = ImportRun(
        label=label,
        file=path.name,
        file_mb=round(path.stat().st_size / 1024 / 1024, 2),
        rows=rows,
        seconds=0.0,
        leads_per_s=0.0,
        peak_rss_mb=0.0,
        completed=False,
        migrate_seconds=round(migrate.seconds, 2),
    )
    if migrate.returncode != 0:
        result.error = f"migrate failed ({migrate.returncode}): {migrate.stderr_tail}"
        return result
    run = run_child(
        [PYTHON, "manage.py", "import_leads", "--no-progress", str(path)],
        env,
        data_dir / "logs-import",
        timeout=timeout,
    )
    result.seconds = round(run.seconds, 2)
    result.cpu_seconds = round(run.cpu_seconds, 2)
    result.peak_rss_mb = round(run.peak_rss_mb, 1)
    result.timed_out = run.timed_out
    for key, value in db_progress(data_dir / "easycrm.sqlite3").items():
        setattr(result, key, value)
    match = _SUMMARY.search(run.stdout)
    if match:
        result.status = match["status"]
        result.created, result.updated = int(match["created"]), int(match["updated"])
        result.skipped, result.failed_batches = int(match["skipped"]), int(match["failed"])
        result.llm_calls = int(match["calls"])
    result.completed = (
        run.returncode == 0
        and result.status == "completed"
        and match is not None
        and int(match["rows"]) == rows
    )
    result.leads_per_s = round((rows if result.completed else result.rows_done) / run.seconds, 1)
    if run.timed_out:
        result.error = f"timed out after {timeout:g} s with {result.rows_done:,} of {rows:,} rows done"
    elif not result.completed:
        result.error = (
            f"exit {run.returncode}; stdout: {run.stdout.strip()[-500:]}; stderr: {run.stderr_tail}"
        )
    # The imported database is not needed any more; the logs are small and stay for a failed run.
    if result.completed:
        shutil.rmtree(data_dir, ignore_errors=True)
    return result


def parse_only(path: Path) -> dict:
    """In-process time of processing.parsing.iter_rows over the whole file, plus pandas on the same file."""
    import pandas as pd

    from processing.parsing import iter_rows

    started = time.perf_counter()
    count = sum(1 for _ in iter_rows(path, path.name, max_rows=10**9, warnings=[]))
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    if path.suffix == ".csv":
        pd.read_csv(path, dtype=str, keep_default_na=False, skiprows=1)
    else:
        pd.read_excel(path, sheet_name=None, dtype=str, keep_default_na=False, engine="calamine")
    pandas_seconds = time.perf_counter() - started
    return {"rows": count, "iter_rows_s": round(seconds, 3), "pandas_same_file_s": round(pandas_seconds, 3)}


# --- DeepSeek mode ------------------------------------------------------------------------------------


def deepseek_bench(
    path: Path,
    rows: int,
    work: Path,
    timeout: float,
    *,
    mode: str = "rows",
    latency: float = DEEPSEEK_LATENCY_S,
) -> dict:
    """Import `path` through the CLI against the fake DeepSeek server (DEEPSEEK_MODE=`mode`, every call
    `latency` s) and count what was sent: (system + user) characters over every request, per lead."""
    from llm.fake_server import FakeDeepSeek
    from processing.standardize import SYSTEM_PROMPT

    class TimedFake(FakeDeepSeek):
        """Also records when the first call arrived and the last one left."""

        first_enter: float | None = None
        last_leave: float | None = None
        _times_lock = threading.Lock()

        def _enter(self) -> None:
            with self._times_lock:
                if self.first_enter is None:
                    self.first_enter = time.perf_counter()
            super()._enter()

        def _leave(self) -> None:
            super()._leave()
            with self._times_lock:
                self.last_leave = time.perf_counter()

    with TimedFake(latency=latency) as fake:
        run = import_file(
            f"DeepSeek {mode} mode (fake, {latency:g} s latency)",
            path,
            rows,
            work,
            timeout,
            DEEPSEEK_API_KEY=fake.api_key,
            DEEPSEEK_BASE_URL=fake.base_url,
            DEEPSEEK_CONCURRENCY=str(DEEPSEEK_CONCURRENCY),
            DEEPSEEK_MODE=mode,
        )
        requests = [body for body in fake.requests if isinstance(body, dict)]
        peak = fake.peak_concurrency
        llm_phase = (fake.last_leave - fake.first_enter) if fake.first_enter and fake.last_leave else 0.0

    systems, users, leads_sent, role_requests = [], [], 0, 0
    for body in requests:
        messages = {m.get("role"): m.get("content") or "" for m in body.get("messages") or []}
        systems.append(messages.get("system", ""))
        users.append(len(messages.get("user", "")))
        with contextlib.suppress(ValueError, KeyError, TypeError):
            sent = json.loads(messages.get("user", ""))
            if "samples" in sent:  # column mode's one call per sheet
                role_requests += 1
            else:
                leads_sent += sum(len(part["rows"]) for part in sent["sheets"])
    batch_systems = [len(text) for text in systems if text == SYSTEM_PROMPT]
    batches = -(-rows // 10)
    limit = DEEPSEEK_CONCURRENCY * 10 / latency
    return {
        "mode": mode,
        "latency_s": latency,
        "import": asdict(run),
        "requests": len(requests),
        "role_requests": role_requests,
        "batches": batches,
        "leads_sent": leads_sent,
        "leads_sent_share": round(leads_sent / rows, 4) if rows else 0.0,
        "ideal_seconds": round(batches / DEEPSEEK_CONCURRENCY * latency, 1),
        "limit_leads_per_s": limit,
        "llm_phase_seconds": round(llm_phase, 2),
        "llm_phase_leads_per_s": round(rows / llm_phase, 1) if llm_phase else 0.0,
        "peak_concurrency": peak,
        "prompt_chars_per_lead": round((sum(map(len, systems)) + sum(users)) / rows, 1) if rows else 0.0,
        "system_chars_per_request": round(sum(batch_systems) / len(batch_systems), 1)
        if batch_systems
        else 0.0,
        "system_prompt_identical": len(set(systems)) <= 1 + bool(role_requests),
        "user_chars_per_lead": round(sum(users) / rows, 1) if rows else 0.0,
    }


def print_deepseek_report(ds: dict) -> None:
    run = ds["import"]
    latency = ds["latency_s"]
    print(
        f"3. DeepSeek {ds['mode']} mode vs fake server ({latency:g} s latency, "
        f"DEEPSEEK_CONCURRENCY={DEEPSEEK_CONCURRENCY}, {run['rows']:,} rows = {ds['batches']} batches)"
    )
    print(
        _row(
            "end-to-end time", f"{run['seconds']:.1f} s", f"ideal {ds['ideal_seconds']:g} s; {_verdict(run)}"
        )
    )
    share = run["leads_per_s"] / ds["limit_leads_per_s"] if ds["limit_leads_per_s"] else 0.0
    print(
        _row(
            "end-to-end throughput",
            _rate(run),
            f"limit {ds['limit_leads_per_s']:g} leads/s ({share:.0%})",
        )
    )
    print(
        _row(
            "LLM phase (first call → last reply)",
            f"{ds['llm_phase_seconds']:.1f} s = {ds['llm_phase_leads_per_s']:.1f} leads/s",
            f"limit {ds['limit_leads_per_s']:g} leads/s",
        )
    )
    peak_ok = "ok" if ds["peak_concurrency"] <= DEEPSEEK_CONCURRENCY else "OVER THE CAP"
    print(
        _row(
            "peak concurrent calls",
            f"{ds['peak_concurrency']}",
            f"must be ≤ {DEEPSEEK_CONCURRENCY} ({peak_ok})",
        )
    )
    if ds["mode"] == "columns":
        print(_row("column-role requests", f"{ds['role_requests']}", "one per sheet"))
    print(_row("requests sent", f"{ds['requests']}", f"batches {ds['batches']} (more = retries)"))
    target = "target ≤ 5 %" if ds["mode"] == "columns" else "every row"
    print(_row("rows sent to the model", f"{ds['leads_sent']:,} = {ds['leads_sent_share']:.1%}", target))
    chars_target = "≤ 20" if ds["mode"] == "columns" else "≤ 100 (was 321)"
    print(
        _row(
            "prompt chars per lead",
            f"{ds['prompt_chars_per_lead']:.1f}",
            f"(system + user) / leads, target {chars_target}",
        )
    )
    print(
        _row(
            "system prompt chars per request",
            f"{ds['system_chars_per_request']:.0f}",
            "identical every request" if ds["system_prompt_identical"] else "VARIES between requests",
        )
    )
    print(_row("user chars per lead", f"{ds['user_chars_per_lead']:.1f}"))
    print(_row("peak RSS", f"{run['peak_rss_mb']:.0f} MB"))


# --- Report ---------------------------------------------------------------------------------------------


def _row(name: str, measured: str, baseline: str = "") -> str:
    return f"  {name:<44} {measured:>22}   {baseline}"


def _rate(run: dict) -> str:
    return f"{run['leads_per_s']:,.0f} leads/s"


def _verdict(run: dict) -> str:
    if run["completed"]:
        return "completed"
    if run["timed_out"]:
        return f"DID NOT COMPLETE: timed out, {run['rows_done']:,} of {run['rows']:,} rows done"
    return "DID NOT COMPLETE (see results.json)"


def print_report(results: dict) -> None:
    meta = results["meta"]
    print()
    print(
        f"Easy CRM benchmarks ({'quick' if meta['quick'] else 'full'}) — {meta['cpus']} CPUs, "
        f"load avg {meta['loadavg_before'][0]:.2f} before / {meta['loadavg_after'][0]:.2f} after, "
        f"Python {meta['python']}, DEBUG={'on' if meta['debug'] else 'off'}"
    )
    print(_row("", "measured", "baseline / target"))
    print("  " + "-" * 100)

    print("1. Offline import, end to end (manage.py import_leads subprocess, fresh SQLite)")
    for run in results["offline"]["imports"]:
        rows = f"{run['rows']:,} rows {Path(run['file']).suffix[1:].upper()} ({run['file_mb']} MB)"
        print(_row(rows + ": time", f"{run['seconds']:.1f} s", _verdict(run)))
        print(_row("   throughput", _rate(run), "average over the whole command"))
        print(
            _row(
                "   throughput, first → last 10% of batches",
                f"{run['first_tenth_leads_per_s']:,.0f} → {run['last_tenth_leads_per_s']:,.0f} leads/s",
                "should hold steady as the leads table grows",
            )
        )
        print(_row("   peak RSS", f"{run['peak_rss_mb']:.0f} MB"))
        print(
            _row(
                "   outcome",
                f"{run['created']:,}c/{run['updated']:,}u/{run['skipped']:,}s",
                "created/updated/skipped (~5% duplicate emails → updated)",
            )
        )
    for parse in results["offline"]["parse_only"]:
        kind = Path(parse["file"]).suffix[1:].upper()
        if kind == "XLSX":
            scale = parse["rows"] / 100_000
            facts = (
                f"DESIGN @100k: pandas+calamine {DESIGN_FACTS['xlsx_pandas_calamine_s']} s, "
                f"openpyxl {DESIGN_FACTS['xlsx_openpyxl_read_only_s']} s"
            )
            if scale != 1:
                facts += f" (file is {parse['rows']:,} rows)"
        else:
            facts = f"DESIGN @100k: pandas C engine {DESIGN_FACTS['csv_pandas_c_engine_s']} s"
            if parse["rows"] != 100_000:
                facts += f" (file is {parse['rows']:,} rows)"
        print(
            _row(
                f"   parse only, iter_rows, {parse['rows']:,} rows {kind}",
                f"{parse['iter_rows_s']:.2f} s",
                facts,
            )
        )
        print(_row(f"   pandas on the same {kind} file, now", f"{parse['pandas_same_file_s']:.2f} s"))

    memory = results["memory"]
    print("2. Memory does not grow with the file (peak RSS of the import process, CSV)")
    print(_row(f"{memory['small_rows']:,} rows", f"{memory['small_rss_mb']:.0f} MB"))
    partial = (
        " (import did not complete: peak so far)" if results["offline"]["imports"][0]["timed_out"] else ""
    )
    print(_row(f"{memory['large_rows']:,} rows", f"{memory['large_rss_mb']:.0f} MB", partial.strip()))
    verdict = "ok" if memory["ratio"] < RSS_RATIO_TARGET else "ABOVE TARGET"
    print(_row("ratio large/small", f"{memory['ratio']:.2f}x", f"target < {RSS_RATIO_TARGET} ({verdict})"))

    for ds in results["deepseek_runs"]:
        print_deepseek_report(ds)
    print()
    print(
        f"Total bench time {meta['total_seconds']:.0f} s (import timeout {meta['timeout_s']:g} s); JSON: {OUT_DIR.relative_to(ROOT) / 'results.json'}"
    )


def formats_bench(work: Path, sizes: tuple[int, ...], xlsx_rows: int, timeout: float) -> dict:
    """Offline imports of one seeded CSV at each size, and of the same rows as XLSX at `xlsx_rows`:
    wall and CPU seconds and peak RSS of each import command."""
    files = work / "files"
    files.mkdir(exist_ok=True)
    imports = []
    for rows in sizes:
        path = files / f"formats_{rows}.csv"
        write_csv(path, rows, seed=SEED)
        print(
            f"Import {path.name} ({rows:,} rows, timeout {timeout * rows / max(sizes):.0f} s) …", flush=True
        )
        imports.append(asdict(import_file("CSV", path, rows, work, timeout=timeout * rows / max(sizes))))
    xlsx = files / f"formats_{xlsx_rows}.xlsx"
    write_xlsx_like_csv(xlsx, xlsx_rows, seed=SEED)
    print(f"Import {xlsx.name} ({xlsx_rows:,} rows) …", flush=True)
    xlsx_run = asdict(import_file("XLSX", xlsx, xlsx_rows, work, timeout=timeout * xlsx_rows / max(sizes)))
    csv_run = next(run for run in imports if run["rows"] == xlsx_rows)
    rss = [run["peak_rss_mb"] for run in imports]
    return {
        "csv": imports,
        "xlsx": xlsx_run,
        "xlsx_over_csv_wall": round(xlsx_run["seconds"] / csv_run["seconds"], 2)
        if csv_run["seconds"]
        else 0.0,
        "xlsx_over_csv_cpu": round(xlsx_run["cpu_seconds"] / csv_run["cpu_seconds"], 2)
        if csv_run["cpu_seconds"]
        else 0.0,
        "rss_max_over_min": round(max(rss) / min(rss), 2) if min(rss) else 0.0,
    }


def print_formats_report(formats: dict) -> None:
    print("4. Formats and memory: one seeded CSV at each size, the same rows as XLSX (offline, fresh SQLite)")
    print(_row("", "wall s / CPU s / peak RSS"))
    for run in [*formats["csv"], formats["xlsx"]]:
        print(
            _row(
                f"{run['rows']:,} rows {run['label']} ({run['file_mb']} MB)",
                f"{run['seconds']:.1f} / {run['cpu_seconds']:.1f} / {run['peak_rss_mb']:.0f} MB",
                _verdict(run),
            )
        )
    wall, cpu = formats["xlsx_over_csv_wall"], formats["xlsx_over_csv_cpu"]
    verdict = "ok" if max(wall, cpu) <= XLSX_CSV_TARGET else "ABOVE TARGET"
    print(
        _row(
            f"XLSX / CSV at {formats['xlsx']['rows']:,} rows",
            f"wall {wall:.2f}x, CPU {cpu:.2f}x",
            f"target ≤ {XLSX_CSV_TARGET} ({verdict})",
        )
    )
    sizes = " / ".join(f"{run['rows'] // 1000}k" for run in formats["csv"])
    ratio = formats["rss_max_over_min"]
    verdict = "ok" if ratio <= RSS_FLAT_TARGET else "ABOVE TARGET"
    print(
        _row(
            f"peak RSS {sizes}, largest / smallest",
            f"{ratio:.2f}x",
            f"target ≤ {RSS_FLAT_TARGET} ({verdict})",
        )
    )


class _DeepSeekOnly(Exception):
    """--deepseek-only: the DeepSeek runs are done, skip the rest."""


# --- Main --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (files, databases)")
    parser.add_argument(
        "--timeout",
        type=float,
        help="stop an import after this many seconds and report it as not completed "
        "(default 300; 120 with --quick)",
    )
    parser.add_argument(
        "--deepseek-only",
        action="store_true",
        help="only the DeepSeek section (rows mode and column mode against the fake server)",
    )
    parser.add_argument(
        "--no-debug",
        action="store_true",
        help="run the imports with DEBUG off (production setting) instead of DEBUG=1",
    )
    parser.add_argument(
        "--formats",
        action="store_true",
        help="only section 4: CSV at 10k/100k/200k rows and the same 100k rows as XLSX "
        "(wall, CPU, peak RSS; quick: 1k/5k/10k); results-formats.json",
    )
    args = parser.parse_args(argv)
    if args.no_debug:
        DJANGO_MODE.update(DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50))
    if args.formats:
        return _formats_main(args)

    if args.quick:
        small, large, xlsx_rows, deepseek_rows = 2_000, 10_000, 10_000, 200
    else:
        small, large, xlsx_rows, deepseek_rows = 10_000, 100_000, 100_000, 1_000
    timeout = args.timeout or (120.0 if args.quick else 300.0)

    began = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="easycrm-bench-"))
    # The bench process itself needs Django for the fake server's responder (offline standardizer);
    # its DATA_DIR is a temporary one too, so var/ is never touched.
    sys.path.insert(0, str(ROOT))
    bench_env = child_env(work / "bench-process")
    os.environ.clear()
    os.environ.update(bench_env)
    import django

    django.setup()

    meta = {
        "timeout_s": timeout,
        "debug": DJANGO_MODE["DEBUG"] == "1",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "seed": SEED,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_before": list(os.getloadavg()),
        "work_dir": str(work),
    }
    try:
        files = work / "files"
        files.mkdir()
        csv_small, csv_large = files / f"leads_{small}.csv", files / f"leads_{large}.csv"
        xlsx = files / f"leads_{xlsx_rows}.xlsx"
        csv_deepseek = files / f"leads_{deepseek_rows}_deepseek.csv"
        print(f"Generating input files in {files} …", flush=True)
        write_csv(csv_small, small, seed=SEED)
        write_csv(csv_large, large, seed=SEED)
        write_xlsx(xlsx, xlsx_rows, seed=SEED + 1)
        write_csv(csv_deepseek, deepseek_rows, seed=SEED + 2)

        print(f"DeepSeek rows mode, {deepseek_rows:,} rows against the fake server …", flush=True)
        deepseek = deepseek_bench(csv_deepseek, deepseek_rows, work, timeout)
        print(f"DeepSeek column mode, {large:,} rows against the fake server …", flush=True)
        # One batch a transaction (the workers chunk only offline): slower than an offline import.
        deepseek_columns = deepseek_bench(
            csv_large, large, work, timeout * 3, mode="columns", latency=COLUMN_MODE_LATENCY_S
        )
        deepseek_runs = [deepseek, deepseek_columns]
        if args.deepseek_only:
            raise _DeepSeekOnly

        print("Parse only (in process) …", flush=True)
        parse = [{"file": p.name, **parse_only(p)} for p in (csv_large, xlsx)]

        def offline(label: str, path: Path, rows: int) -> dict:
            print(f"Import {path.name} ({rows:,} rows, timeout {timeout:g} s) …", flush=True)
            return asdict(import_file(label, path, rows, work, timeout=timeout))

        small_run = offline("offline CSV (small)", csv_small, small)
        large_run = offline("offline CSV", csv_large, large)
        xlsx_run = offline("offline XLSX", xlsx, xlsx_rows)
        imports = [large_run, xlsx_run, small_run]

        results = {
            "meta": meta,
            "offline": {"imports": imports[:2], "parse_only": parse, "design_facts": DESIGN_FACTS},
            "memory": {
                "small_rows": small,
                "large_rows": large,
                "small_rss_mb": small_run["peak_rss_mb"],
                "large_rss_mb": large_run["peak_rss_mb"],
                "ratio": round(large_run["peak_rss_mb"] / small_run["peak_rss_mb"], 2)
                if small_run["peak_rss_mb"]
                else 0.0,
                "target_ratio_below": RSS_RATIO_TARGET,
                "partial": not (small_run["completed"] and large_run["completed"]),
                "small_import": small_run,
            },
            "deepseek": deepseek,
            "deepseek_columns": deepseek_columns,
            "deepseek_runs": deepseek_runs,
        }
    except _DeepSeekOnly:
        imports = []
        results = {"meta": meta, "deepseek": deepseek, "deepseek_columns": deepseek_columns}
        results["deepseek_runs"] = deepseek_runs
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    meta["loadavg_after"] = list(os.getloadavg())
    meta["total_seconds"] = round(time.perf_counter() - began, 1)

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    name = "results-deepseek.json" if args.deepseek_only else "results.json"
    (OUT_DIR / name).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    if args.deepseek_only:
        for run in deepseek_runs:
            print_deepseek_report(run)
    else:
        print_report(results)

    problems = [run for run in [*imports, *(ds["import"] for ds in deepseek_runs)] if not run["completed"]]
    for run in problems:
        print(f"\nFAILED: {run['label']} ({run['file']}) did not complete: {run['error']}", file=sys.stderr)
    over = [ds for ds in deepseek_runs if ds["peak_concurrency"] > DEEPSEEK_CONCURRENCY]
    for ds in over:
        print(
            f"\nFAILED: {ds['peak_concurrency']} DeepSeek calls were in flight at once in {ds['mode']} mode "
            f"(DEEPSEEK_CONCURRENCY={DEEPSEEK_CONCURRENCY}).",
            file=sys.stderr,
        )
    return 1 if problems or over else 0


def _formats_main(args: argparse.Namespace) -> int:
    sizes = (1_000, 5_000, 10_000) if args.quick else (10_000, 100_000, 200_000)
    xlsx_rows = sizes[-1] if args.quick else 100_000
    # The largest import gets the whole timeout, smaller ones their share.
    timeout = args.timeout or (120.0 if args.quick else 900.0)
    work = Path(tempfile.mkdtemp(prefix="easycrm-bench-"))
    began = time.perf_counter()
    try:
        formats = formats_bench(work, sizes, xlsx_rows, timeout)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    formats["meta"] = {
        "debug": DJANGO_MODE["DEBUG"] == "1",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "loadavg_after": list(os.getloadavg()),
        "total_seconds": round(time.perf_counter() - began, 1),
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "results-formats.json").write_text(json.dumps(formats, indent=2, ensure_ascii=False) + "\n")
    print()
    print_formats_report(formats)
    problems = [run for run in [*formats["csv"], formats["xlsx"]] if not run["completed"]]
    for run in problems:
        print(f"\nFAILED: {run['label']} ({run['file']}) did not complete: {run['error']}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
