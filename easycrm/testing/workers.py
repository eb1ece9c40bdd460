"""Real processes of the app for the integration and browser tests: the test database as a
DATABASE_URL the subprocesses can use, and a set of `manage.py qcluster` workers, the upload and the
sweeper started with one environment."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"


def database_url() -> str:
    """The test database, as a DATABASE_URL the worker processes can use."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    if db["ENGINE"].endswith(("postgresql", "postgis")):
        auth = quote(db["USER"] or "", safe="")
        if db.get("PASSWORD"):
            auth += ":" + quote(db["PASSWORD"], safe="")
        host = db.get("HOST") or "127.0.0.1"
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{auth}@{host}{port}/{db['NAME']}"
    pytest.fail(f"no DATABASE_URL mapping for {db['ENGINE']}")


def subprocess_env(**overrides: str) -> dict[str, str]:
    """The environment of an app process started by a test: the test database, a real queue (no
    Q_SYNC), and none of the developer's DeepSeek, S3 or Redis settings — the ORM broker and the fake."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DEEPSEEK_", "S3_", "Q_CLUSTER_NAME", "DJANGO_ALLOW_ASYNC_UNSAFE"))
        and key != "REDIS_URL"
    }
    env.update(
        DATABASE_URL=database_url(),
        Q_SYNC="0",
        DEBUG="1",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="easycrm.settings",
    )
    env.update(overrides)
    return env


class Workers:
    """Subprocesses of one test: clusters, the upload and the sweeper, all with one environment."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.clusters: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str = "default", **extra_env: str) -> subprocess.Popen:
        env = {**self.env, **extra_env}
        if name != "default":
            env["Q_CLUSTER_NAME"] = name
        log = (self.log_dir / f"qcluster-{name}-{len(self.clusters)}.log").open("wb")
        # Own process group: stopping it reaches the sentinel, pusher, monitor and every worker.
        process = subprocess.Popen(
            [sys.executable, str(MANAGE), "qcluster"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.clusters.append((name, process))
        return process

    def manage(self, *args: str, timeout: float = 60) -> str:
        result = subprocess.run(
            [sys.executable, str(MANAGE), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode:
            pytest.fail(f"manage.py {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
        return result.stdout

    def start_sweeper(self, interval: float) -> subprocess.Popen:
        """The `imports-sweep` schedule, every `interval` seconds instead of every minute."""
        code = (
            "import time\n"
            "from processing.tasks import imports_sweep\n"
            "while True:\n"
            "    imports_sweep()\n"
            f"    time.sleep({interval})\n"
        )
        log = (self.log_dir / "sweeper.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, str(MANAGE), "shell", "-c", code],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.clusters.append(("sweeper", process))
        return process

    def upload(self, path: Path) -> str:
        out = self.manage("import_leads", "--queue", "--no-progress", str(path))
        return out.split()[0]

    @staticmethod
    def kill(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)

    def stop_all(self) -> None:
        # SIGTERM to the leader only: it stops the sentinel, which stops its pusher, workers and
        # monitor in order (a SIGTERM to the whole group kills the sentinel first and the leader hangs).
        for _, process in self.clusters:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, process in self.clusters:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for _, process in self.clusters:
            # Then the group, not only the leader: no worker may outlive the test.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def logs(self) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}")
        return "\n".join(parts)
