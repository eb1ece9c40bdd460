"""Import speed side by side with its baselines, in one run (issue: import at bulk speed).

    .venv/bin/python bench/bulk.py                 # 100k rows, 3 repetitions, SQLite and PostgreSQL
    .venv/bin/python bench/bulk.py --quick         # 5k rows, 1 repetition (make test's smoke run)
    .venv/bin/python bench/bulk.py --rows 20000 --repeat 2 --no-postgres
    .venv/bin/python bench/bulk.py --rows 20000 --before /tmp/old-checkout   # + that checkout's import

Every figure is one command in its own process against a freshly migrated database: `manage.py
import_leads FILE` (the real pipeline, offline standardizer: new leads, then the same file again),
plain `bulk_create` of the same rows, and django-import-export with a tuned bulk upsert by email (new,
then again). CPU seconds (user + system of that process and the processes it forks) are the figure to
compare: wall time is noisy on a shared machine. The scenarios are interleaved per repetition so a
burst of load hits all of them. `--before DIR` also runs `import_leads` of another checkout (e.g. the
last commit, exported with `git archive`), so a change is measured before → after in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # noqa: E402 - the generators and the child runner of bench/run.py

PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def _postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://"), connect_timeout=3):
            return True
    except Exception:
        return False


def _fresh_database(engine: str, work: Path, name: str) -> dict[str, str]:
    """Environment for a child process using a new, empty database."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
    env = {"DATA_DIR": str(data_dir), "DEBUG": "0", "SECRET_KEY": "bench-" + "x" * 50, "LOG_LEVEL": "WARNING"}
    if engine == "postgresql":
        import psycopg

        database = f"bench_{name}_{os.getpid()}"
        with psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
            conn.execute(f'CREATE DATABASE "{database}"')
        env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{database}"
    return env


def _drop_database(env: dict[str, str]) -> None:
    if "DATABASE_URL" not in env:
        return
    import psycopg

    database = env["DATABASE_URL"].rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _run(argv: list[str], env: dict[str, str], logs: Path, label: str) -> bench.ChildRun:
    result = bench.run_child(argv, bench.child_env(Path(env["DATA_DIR"]), **env), logs / label)
    if result.returncode:
        raise SystemExit(f"{label} failed ({result.returncode}):\n{result.stderr_tail}")
    return result


def _scenarios(
    engine: str, path: Path, work: Path, repetition: int, before: Path | None = None
) -> dict[str, bench.ChildRun]:
    manage = [bench.PYTHON, str(bench.ROOT / "manage.py")]
    baselines = [bench.PYTHON, str(bench.ROOT / "bench" / "baselines.py")]
    logs = work / "logs" / f"{engine}-{repetition}"
    results: dict[str, bench.ChildRun] = {}
    names = (
        ("before", "ours", "bulk_create", "import_export")
        if before
        else ("ours", "bulk_create", "import_export")
    )
    for name in names:
        env = _fresh_database(engine, work, name)
        try:
            if name == "before":
                # Its own migrations and code, from its own directory (relative imports, templates).
                old = [bench.PYTHON, str(before / "manage.py")]
                _run([*old, "migrate", "-v0"], env, logs, "before-migrate")
                command = [*old, "import_leads", "--no-progress", str(path)]
                results["before, new leads"] = _run(command, env, logs, "before-new")
                results["before, re-import"] = _run(command, env, logs, "before-again")
                continue
            _run([*manage, "migrate", "-v0"], env, logs, f"{name}-migrate")
            if name == "ours":
                command = [*manage, "import_leads", "--no-progress", str(path)]
                results["ours, new leads"] = _run(command, env, logs, "ours-new")
                results["ours, re-import"] = _run(command, env, logs, "ours-again")
            elif name == "bulk_create":
                results["plain bulk_create"] = _run([*baselines, "bulk_create", str(path)], env, logs, name)
            else:
                command = [*baselines, "import_export", str(path)]
                results["import-export tuned, new"] = _run(command, env, logs, "ie-new")
                results["import-export tuned, re-import"] = _run(command, env, logs, "ie-again")
        finally:
            _drop_database(env)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="5k rows, 1 repetition")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--repeat", type=int)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--before", type=Path, metavar="DIR", help="also import with the checkout in DIR (same run)"
    )
    args = parser.parse_args(argv)
    rows = args.rows or (5_000 if args.quick else 100_000)
    repeat = args.repeat or (1 if args.quick else 3)
    engines = ["sqlite"] + ([] if args.no_postgres or not _postgres_available() else ["postgresql"])
    work = Path(tempfile.mkdtemp(prefix="bench-bulk-"))
    path = work / f"leads_{rows}.csv"
    bench.write_csv(path, rows, seed=bench.SEED)
    print(f"bench/bulk.py: {rows:,} rows, {repeat} repetition(s), load average {os.getloadavg()[0]:.1f}")
    started = time.perf_counter()
    for engine in engines:
        runs: dict[str, list[bench.ChildRun]] = {}
        for repetition in range(repeat):
            for label, result in _scenarios(engine, path, work, repetition, args.before).items():
                runs.setdefault(label, []).append(result)
        tuned = statistics.median(r.cpu_seconds for r in runs["import-export tuned, new"])
        plain = statistics.median(r.cpu_seconds for r in runs["plain bulk_create"])
        print(f"\n{engine}: CPU seconds of the importing process (median; min–max), wall seconds")
        print(
            f"{'importer':34} {'CPU s':>8} {'range':>13} {'wall s':>8} {'/ ie tuned':>11} {'/ bulk_create':>14}"
        )
        for label, results in runs.items():
            cpu = [r.cpu_seconds for r in results]
            median = statistics.median(cpu)
            wall = statistics.median(r.seconds for r in results)
            print(
                f"{label:34} {median:8.2f} {min(cpu):6.2f}–{max(cpu):<6.2f} {wall:8.2f} "
                f"{median / tuned:10.2f}× {median / plain:13.2f}×"
            )
    print(f"\nload average after: {os.getloadavg()[0]:.1f}; took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
