"""SQS as the task broker (SQS_REGION, docs/deployment.md): a task queued by the app through the SQS
broker is run by a real qcluster and acknowledged, against moto's SQS emulator on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from django_q.models import Task

from easycrm.testing.workers import Workers, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def sqs_emulator(tmp_path) -> Iterator[str]:
    """moto's server (the `moto[server]` package) on a free loopback port, stopped afterwards."""
    port = _free_port()
    log = (tmp_path / "moto.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"moto did not start:\n{(tmp_path / 'moto.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _queue_counts(endpoint: str, name: str) -> tuple[int, int]:
    import boto3

    sqs = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(attributes[names[0]]), int(attributes[names[1]])


def test_a_task_queued_through_sqs_is_run_by_a_worker_and_acknowledged(sqs_emulator, tmp_path):
    env = subprocess_env(
        MEDIA_ROOT=str(tmp_path / "media"),
        SQS_REGION="eu-west-1",
        SQS_ACCESS_KEY_ID="testing",
        SQS_SECRET_ACCESS_KEY="testing",
        SQS_WAIT_SECONDS="1",
        AWS_ENDPOINT_URL_SQS=sqs_emulator,
    )
    workers = Workers(tmp_path, env)
    enqueue = (
        "from django_q.brokers import get_broker\n"
        "from django_q.tasks import async_task\n"
        "broker = get_broker('deepseek')\n"
        "assert broker.info() == 'AWS SQS', broker.info()\n"
        "print(async_task('math.floor', 2.5, cluster='deepseek', broker=broker, save=True))\n"
    )
    task_id = workers.manage("shell", "-c", enqueue).split()[-1]
    assert _queue_counts(sqs_emulator, "deepseek") == (1, 0)
    try:
        workers.start("deepseek")
        deadline = time.monotonic() + 60
        while not Task.objects.filter(id=task_id).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        task = Task.objects.filter(id=task_id).first()
        assert task is not None, workers.logs()
        assert task.success and task.result == 2
        deadline = time.monotonic() + 10
        while _queue_counts(sqs_emulator, "deepseek") != (0, 0) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _queue_counts(sqs_emulator, "deepseek") == (0, 0)  # acknowledged: deleted from the queue
    finally:
        workers.stop_all()
