"""The operations page for staff (/ops/): task queues, batches, workers and DeepSeek usage at a glance.

Everything is read from what the pipeline already records — the broker's queue sizes, the ImportJob
and ImportBatch rows (llm_calls, llm_seconds, tokens, last_error) and the worker heartbeats of
processing.health — so the page adds no bookkeeping of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.status import Stat

from . import health
from .models import ImportBatch, ImportJob

logger = logging.getLogger("easycrm.ops")

WINDOWS = (("Last hour", timedelta(hours=1)), ("Last day", timedelta(days=1)))
FAILED_BATCHES_SHOWN = 20


@dataclass(frozen=True)
class ClusterState:
    name: str
    heartbeat_age: float | None  # seconds since its newest worker heartbeat; None: none seen
    alive: bool
    processes: dict[str, float]  # worker (host:pid) → seconds since its beat
    waiting: int | None  # messages in its broker queue; None: the broker did not answer
    # Taken by a cluster and not yet acknowledged (ORM and SQS brokers; Redis does not say).
    in_flight: int | None


@dataclass(frozen=True)
class LlmUsage:
    label: str
    batches: int
    calls: int
    seconds: float
    failed_batches: int
    prompt_tokens: int
    completion_tokens: int

    @property
    def seconds_per_call(self) -> float | None:
        return self.seconds / self.calls if self.calls else None


def ops_snapshot() -> dict:
    """Everything the ops page shows, as of now."""
    now = timezone.now()
    return {
        "now": now,
        "batch_states": batch_states(),
        "failed_batches": (
            ImportBatch.objects.filter(status=ImportBatch.Status.FAILED)
            .select_related("job")
            .defer("rows", "results")
            .order_by("-finished_at")[:FAILED_BATCHES_SHOWN]
        ),
        "clusters": cluster_states(),
        "sentinels": _sentinels(),
        "llm_usage": [llm_usage(label=label, since=now - window) for label, window in WINDOWS],
        "active_imports": ImportJob.objects.filter(status__in=ImportJob.ACTIVE)
        .select_related("uploaded_by")
        .order_by("created_at"),
    }


def cluster_states() -> list[ClusterState]:
    """Per task cluster: its workers' heartbeats and its broker queue."""
    ages, processes = health.clusters_alive(), health.cluster_workers()
    states = []
    for cluster in health.CLUSTERS:
        waiting = in_flight = None
        try:
            broker = get_broker(Conf.PREFIX if cluster == health.DEFAULT_CLUSTER else cluster)
            waiting, in_flight = broker.queue_size(), broker.lock_size()
        except Exception:
            logger.warning("could not read the size of the %s queue", cluster, exc_info=True)
        age = ages[cluster]
        states.append(
            ClusterState(
                name=cluster,
                heartbeat_age=age,
                alive=age is not None and age <= health.WORKER_ALIVE_SECONDS,
                processes=processes[cluster],
                waiting=waiting,
                in_flight=in_flight,
            )
        )
    return states


def batch_states() -> list[tuple[str, int]]:
    """(label, count) for every batch state, in the order a batch goes through them."""
    counts = dict(ImportBatch.objects.order_by().values_list("status").annotate(count=Count("id")))
    return [(status.label, counts.get(status.value, 0)) for status in ImportBatch.Status]


def llm_usage(*, label: str, since) -> LlmUsage:
    """DeepSeek use by the batches of DeepSeek-mode imports that finished since `since`; tokens are kept
    per import, so they are those of the imports that finished since then or are still running."""
    batches = ImportBatch.objects.filter(finished_at__gte=since, job__standardizer="deepseek").aggregate(
        batches=Count("id"),
        calls=Sum("llm_calls", default=0),
        seconds=Sum("llm_seconds", default=0.0),
        failed=Count("id", filter=Q(status=ImportBatch.Status.FAILED)),
    )
    tokens = (
        ImportJob.objects.filter(standardizer="deepseek")
        .filter(Q(finished_at__gte=since) | Q(status__in=ImportJob.ACTIVE))
        .aggregate(prompt=Sum("prompt_tokens", default=0), completion=Sum("completion_tokens", default=0))
    )
    return LlmUsage(
        label=label,
        batches=batches["batches"],
        calls=batches["calls"],
        seconds=batches["seconds"],
        failed_batches=batches["failed"],
        prompt_tokens=tokens["prompt"],
        completion_tokens=tokens["completion"],
    )


def _sentinels() -> list[dict]:
    """django-q2's own view: each running qcluster (host, status, worker count, uptime)."""
    try:
        stats = Stat.get_all(broker=get_broker())
    except Exception:
        logger.warning("could not read the django-q cluster stats", exc_info=True)
        return []
    return [
        {
            "host": stat.host,
            "pid": stat.pid,
            "status": stat.status,
            "workers": len(stat.workers),
            "uptime": stat.uptime() if stat.tob else None,
        }
        for stat in stats
    ]


@login_required
@require_safe
def ops_page(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied
    context = {"nav": "ops", **ops_snapshot()}
    if request.htmx:
        return render(request, "ops/page.html#panel", context)
    return render(request, "ops/page.html", context)
