"""The real worker path: `manage.py qcluster` processes (the default cluster and the `deepseek` one)
against the test database, fed by `manage.py import_leads --queue` — no Q_SYNC anywhere.

pytest-django's test database is shared with the subprocesses through DATABASE_URL (the SQLite test
file, or the PostgreSQL test database), which is why these tests are transactional: the workers must
see what the test committed, and the test must see what the workers committed. The upload itself runs
in a subprocess too, so it enqueues on the broker that subprocess's settings choose (the ORM, or Redis
with REDIS_URL) — django-q2 reads its Conf once at import, so the test process cannot switch brokers.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.utils import timezone
from django_q.models import Failure, OrmQ

from easycrm.testing.files import HEADER, people, write_csv
from easycrm.testing.workers import Workers, subprocess_env
from leads.models import Lead
from llm.fake_server import FakeDeepSeek
from llm.models import LlmSlot
from processing.models import ImportBatch, ImportJob

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"
REDIS_URL = "redis://127.0.0.1:6379/5"
JOB_TIMEOUT = 60
ROWS = 300


@pytest.fixture
def workers(transactional_db, tmp_path) -> Iterator[Callable[..., Workers]]:
    """Build a Workers set for this test; every process it started is stopped at teardown, before
    pytest-django flushes the database."""
    made: list[Workers] = []

    def make(**env: str) -> Workers:
        group = Workers(tmp_path, subprocess_env(MEDIA_ROOT=str(tmp_path / "media"), **env))
        made.append(group)
        return group

    yield make
    for group in made:
        group.stop_all()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[str]:
    """Redis on 127.0.0.1:6379: the machine's own when it runs, else one started (and stopped) here."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
        yield REDIS_URL
        return
    except redis.ConnectionError:
        pass
    binary = shutil.which("redis-server")
    if not binary:
        pytest.fail("Redis is not running on 127.0.0.1:6379 and redis-server is not installed")
    log = tmp_path_factory.mktemp("redis") / "redis.log"
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.1)
        yield REDIS_URL
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def wait_for_job(job_id: str, group: Workers, timeout: float = JOB_TIMEOUT) -> ImportJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = ImportJob.objects.get(pk=job_id)
        if job.is_terminal:
            return job
        time.sleep(0.2)
    statuses = Counter(ImportBatch.objects.filter(job_id=job_id).values_list("status", flat=True))
    pytest.fail(
        f"job {job_id} still {job.status} after {timeout} s, batches {dict(statuses)}\n{group.logs()}"
    )


def wait_until(condition: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.05)


def assert_exactly_once(job: ImportJob, rows: int, *, attempts: int | None = 1) -> None:
    batches = list(ImportBatch.objects.filter(job=job))
    assert job.status == ImportJob.Status.COMPLETED, job.error_message
    assert job.total_rows == rows
    assert job.total_batches == len(batches) == -(-rows // 10)
    assert job.completed_batches == job.total_batches
    assert (job.failed_batches, job.skipped_batches, job.rows_failed, job.rows_skipped) == (0, 0, 0, 0)
    assert job.leads_created == rows and job.leads_updated == 0
    assert all(batch.status == ImportBatch.Status.DONE for batch in batches)
    if attempts is not None:
        assert Counter(batch.attempts for batch in batches) == {attempts: len(batches)}
    outcomes = Counter(result["outcome"] for batch in batches for result in batch.results)
    assert outcomes == {"created": rows}
    assert Lead.objects.filter(import_job=job).count() == Lead.objects.count() == rows
    emails = list(Lead.objects.values_list("email", flat=True))
    assert len(set(emails)) == rows


def assert_no_failed_tasks() -> None:
    failures = [(task.func, str(task.result)) for task in Failure.objects.all()]
    assert not failures, failures


@pytest.fixture
def leads_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "leads.csv", HEADER, people(ROWS))


def test_orm_broker_workers_import_every_row_once(workers, leads_csv):
    group = workers()

    job_id = group.upload(leads_csv)
    # Nothing runs in-process: the split task waits in the database queue until a cluster starts.
    assert ImportJob.objects.get(pk=job_id).status == ImportJob.Status.UPLOADED
    assert OrmQ.objects.count() == 1
    group.start()
    group.start("deepseek")

    job = wait_for_job(job_id, group)

    assert_exactly_once(job, ROWS)
    assert job.standardizer == "offline"
    assert_no_failed_tasks()


@pytest.fixture
def redis_db(redis_server) -> Iterator[redis.Redis]:
    """Database 5 of the test Redis, empty, and ours alone: two test runs on one machine (two
    checkouts, CI and a developer) would otherwise take each other's tasks from the same queue."""
    with open(Path(tempfile.gettempdir()) / "easycrm-test-redis-db5.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        client = redis.Redis.from_url(redis_server)
        client.flushdb()
        try:
            yield client
        finally:
            client.flushdb()
            fcntl.flock(lock, fcntl.LOCK_UN)


def test_redis_broker_workers_import_every_row_once(workers, redis_db, leads_csv):
    broker = redis_db
    group = workers(REDIS_URL=REDIS_URL)

    job_id = group.upload(leads_csv)
    assert broker.llen("django_q:easycrm:q") == 1  # the split task went to Redis, not the database
    assert OrmQ.objects.count() == 0
    group.start()
    group.start("deepseek")

    job = wait_for_job(job_id, group)

    assert_exactly_once(job, ROWS)
    assert broker.llen("django_q:deepseek:q") == 0
    assert OrmQ.objects.count() == 0
    assert_no_failed_tasks()


def test_llm_concurrency_cap_holds_across_worker_processes(workers, leads_csv):
    with FakeDeepSeek(api_key="test-key", latency=0.3) as fake:
        group = workers(
            DEEPSEEK_API_KEY="test-key",
            DEEPSEEK_BASE_URL=fake.base_url,
            DEEPSEEK_CONCURRENCY="5",
        )
        job_id = group.upload(leads_csv)
        group.start()
        # Two batch clusters, ten workers in all: only the shared LLM permits can hold the cap.
        group.start("deepseek")
        group.start("deepseek")

        job = wait_for_job(job_id, group)

    assert_exactly_once(job, ROWS)
    assert job.standardizer == "deepseek"
    assert fake.call_count == job.total_batches == job.llm_calls
    assert 2 <= fake.peak_concurrency <= 5
    assert_no_failed_tasks()


def test_killed_batch_cluster_is_recovered_without_duplicates(workers, leads_csv):
    with FakeDeepSeek(api_key="test-key", latency=0.5) as fake:
        group = workers(
            DEEPSEEK_API_KEY="test-key",
            DEEPSEEK_BASE_URL=fake.base_url,
            DEEPSEEK_CONCURRENCY="5",
            DEEPSEEK_CONNECT_TIMEOUT="0.5",
            DEEPSEEK_READ_TIMEOUT="1.5",
            BATCH_LEASE_SECONDS="3",
            BATCH_HEARTBEAT_SECONDS="1",
            STALLED_JOB_SECONDS="3",
        )
        job_id = group.upload(leads_csv)
        group.start()
        batch_cluster = group.start("deepseek")
        batches = ImportBatch.objects.filter(job_id=job_id)

        def some_done_some_running() -> bool:
            return (
                batches.filter(status=ImportBatch.Status.DONE).count() >= 5
                and batches.filter(status=ImportBatch.Status.RUNNING).exists()
            )

        wait_until(some_done_some_running, 30, f"batches never ran\n{group.logs()}")
        group.kill(batch_cluster)  # SIGKILL to the whole group: no clean shutdown, calls cut mid-way
        orphaned = set(batches.filter(status=ImportBatch.Status.RUNNING).values_list("id", flat=True))
        assert orphaned
        assert ImportJob.objects.get(pk=job_id).status == ImportJob.Status.PROCESSING
        group.start("deepseek")

        # The dead workers' LLM permits come back when their leases run out (about 7 s here); with
        # the 3 s batch lease of this test, sweeping earlier would only pile up claims of batches
        # waiting for a permit. So: wait for the permits, then sweep as the minute schedule would,
        # just more often.
        wait_until(
            lambda: not LlmSlot.objects.exclude(holder="").filter(lease_until__gte=timezone.now()).exists(),
            45,
            "the dead workers' LLM permits were never released",
        )
        group.start_sweeper(interval=1)

        job = wait_for_job(job_id, group)

    assert_exactly_once(job, ROWS, attempts=None)
    attempts = dict(batches.values_list("id", "attempts"))
    assert {attempts[batch_id] for batch_id in orphaned} == {2}
    assert {count for batch_id, count in attempts.items() if batch_id not in orphaned} == {1}
    assert fake.call_count >= job.total_batches, (job.llm_calls, job.standardizer, fake.call_count)
    assert_no_failed_tasks()


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_a_killed_batch_cluster_is_recovered_within_two_minutes_with_default_settings(
    workers, leads_csv, broker, request
):
    # Default leases, heartbeats and timeouts; the sweeper runs once a minute, as its schedule does.
    extra = {}
    if broker == "redis":
        request.getfixturevalue("redis_db")
        extra["REDIS_URL"] = REDIS_URL
    with FakeDeepSeek(api_key="test-key", latency=0.5) as fake:
        group = workers(DEEPSEEK_API_KEY="test-key", DEEPSEEK_BASE_URL=fake.base_url, **extra)
        job_id = group.upload(leads_csv)
        group.start()
        batch_cluster = group.start("deepseek")
        batches = ImportBatch.objects.filter(job_id=job_id)
        wait_until(
            lambda: (
                batches.filter(status=ImportBatch.Status.DONE).count() >= 3
                and batches.filter(status=ImportBatch.Status.RUNNING).exists()
            ),
            60,
            f"batches never ran\n{group.logs()}",
        )
        group.kill(batch_cluster)
        killed_at = time.monotonic()
        group.start("deepseek")
        group.start_sweeper(interval=60)

        job = wait_for_job(job_id, group, timeout=150)
        recovery = time.monotonic() - killed_at

    assert_exactly_once(job, ROWS, attempts=None)
    assert recovery < 120, f"recovery took {recovery:.0f} s"
    assert_no_failed_tasks()
