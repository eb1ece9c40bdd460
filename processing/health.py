"""Is a worker of each task cluster alive? Every qcluster worker process beats into the cache.

django-q2's own cluster stats (django_q.status.Stat) are saved by each sentinel, but they do not say
which cluster (queue) they belong to — both of ours share the prefix `easycrm` — so each worker
process records its own heartbeat instead: a daemon thread started on django-q2's `post_spawn`
signal writes, every HEARTBEAT_SECONDS, the time into one cache entry per cluster (the cache every
process shares: Redis, or the database cache). The thread runs however long the worker's task takes,
so a busy worker is alive and a killed one stops beating.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import socket
import threading
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections
from django.utils import timezone
from django_q.conf import Conf

from .services import BATCH_CLUSTER

logger = logging.getLogger("easycrm.health")

DEFAULT_CLUSTER = "default"
# The task clusters `make run` / `make serve` start: the default one (splits, the sweeper) and the batches'.
CLUSTERS = (DEFAULT_CLUSTER, BATCH_CLUSTER)
HEARTBEAT_SECONDS = 10
# A cluster none of whose workers beat for this long has no worker running.
WORKER_ALIVE_SECONDS = 3 * HEARTBEAT_SECONDS
HEARTBEAT_KEY = "easycrm:worker-heartbeats:{cluster}"


def current_cluster() -> str:
    """The cluster this process serves: `default`, or the Q_CLUSTER_NAME it was started with."""
    return DEFAULT_CLUSTER if Conf.CLUSTER_NAME == Conf.PREFIX else Conf.CLUSTER_NAME


def worker_heartbeat(*, cluster: str, worker: str) -> None:
    """Record that `worker` (host:pid) of `cluster` is alive now. One cache entry per cluster maps each
    worker to its last beat; a concurrent writer may drop another's entry, which its next beat restores
    (the newest beat — what clusters_alive reads — is always the writer's own)."""
    now = timezone.now()
    key = HEARTBEAT_KEY.format(cluster=cluster)
    beats = {
        name: at
        for name, at in (cache.get(key) or {}).items()
        if (now - at).total_seconds() < 2 * WORKER_ALIVE_SECONDS
    }
    beats[worker] = now
    cache.set(key, beats, timeout=None)


def cluster_workers() -> dict[str, dict[str, float]]:
    """Per cluster, its live workers (host:pid, a beat within WORKER_ALIVE_SECONDS) and the age of each
    one's last beat in seconds, newest first."""
    now = timezone.now()
    workers: dict[str, dict[str, float]] = {}
    for cluster, beats in _beats().items():
        ages = {worker: (now - at).total_seconds() for worker, at in beats.items()}
        workers[cluster] = {
            worker: round(age, 1)
            for worker, age in sorted(ages.items(), key=lambda item: item[1])
            if age <= WORKER_ALIVE_SECONDS
        }
    return workers


def clusters_alive() -> dict[str, float | None]:
    """Per cluster, the age in seconds of the newest heartbeat of any of its workers; None when no
    worker has beaten (recently enough to be remembered)."""
    now = timezone.now()
    ages: dict[str, float | None] = {}
    for cluster, beats in _beats().items():
        ages[cluster] = round((now - max(beats.values())).total_seconds(), 1) if beats else None
    return ages


def clusters_down() -> list[str]:
    """The clusters with no live worker. Empty with Q_SYNC, where tasks run in the calling process."""
    if settings.Q_CLUSTER.get("sync"):
        return []
    return [cluster for cluster, age in clusters_alive().items() if age is None or age > WORKER_ALIVE_SECONDS]


def _beats() -> dict[str, dict[str, datetime]]:
    """Per cluster (in CLUSTERS' order), each worker's last beat: one cache read for all clusters, as
    every status poll of every user asks (issue 12's load)."""
    keys = {cluster: HEARTBEAT_KEY.format(cluster=cluster) for cluster in CLUSTERS}
    try:
        found = cache.get_many(keys.values())
    except Exception:
        # A cache outage must not break the pages that show the warning; /healthz reports it.
        logger.warning("could not read the worker heartbeats", exc_info=True)
        found = {}
    return {cluster: found.get(key) or {} for cluster, key in keys.items()}


class Heartbeat(threading.Thread):
    """Beats for one worker process of `cluster` every HEARTBEAT_SECONDS until stopped or the
    process ends (a daemon thread)."""

    def __init__(self, cluster: str, worker: str) -> None:
        super().__init__(name="worker-heartbeat", daemon=True)
        self.cluster, self.worker = cluster, worker
        self._stopped = threading.Event()

    def run(self) -> None:
        # A cluster's workers start together: a random first pause spreads their later beats, so their
        # read-modify-writes of the one cache entry rarely overlap.
        pause = random.uniform(1, HEARTBEAT_SECONDS)
        while not self._stopped.is_set():
            try:
                # This thread's own connection (database cache) may have gone stale, e.g. after a restart.
                close_old_connections()
                worker_heartbeat(cluster=self.cluster, worker=self.worker)
            except Exception:
                logger.warning("could not record the worker heartbeat", exc_info=True)
            self._stopped.wait(pause)
            pause = HEARTBEAT_SECONDS

    def stop(self) -> None:
        self._stopped.set()
        self.join()


def worker_heartbeat_start(sender=None, proc_name: str = "", **kwargs) -> Heartbeat | None:
    """django-q2 `post_spawn` receiver (processing.apps): beat from this worker process while it lives.
    Nothing for a sync task (django-q2 runs the worker function in the caller's own main process)."""
    if multiprocessing.current_process().name == "MainProcess":
        return None
    return heartbeat_start(cluster=current_cluster())


def heartbeat_start(*, cluster: str) -> Heartbeat:
    heartbeat = Heartbeat(cluster, f"{socket.gethostname()}:{os.getpid()}")
    heartbeat.start()
    return heartbeat


def worker_warning_context(request) -> dict:
    """Context processor for templates/processing/_worker_warning.html. The value is the function, so a
    template evaluates it (one cache read per cluster) only where the warning is included."""
    return {"workers_down": clusters_down}
