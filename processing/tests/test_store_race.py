"""Two chunks of one import inserting the same new email at the same moment (PostgreSQL: the second
insert waits on the first's uncommitted row, then hits the unique email). The store must settle it in
place — the losing chunk's upsert runs again in a fresh savepoint and finds the other's lead — so no
batch is queued again, every row keeps one outcome and the later row still wins."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.files import File
from django.db import connection

from easycrm.testing.files import HEADER, people, write_csv
from leads import services as lead_services
from leads.models import Lead, LeadRevision
from processing import services
from processing.models import ImportBatch, ImportJob

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite writers never overlap"),
]


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_two_chunks_inserting_one_new_email_settle_it_without_requeuing(tmp_path, settings, monkeypatch):
    settings.STORE_CHUNK_BATCHES = 1  # batch 1 and batch 2 are stored by two workers at once
    rows = people(20)
    rows[2][3] = rows[12][3] = "twice@example.com"  # row 3 (batch 1) and row 13 (batch 2)
    rows[12][0] = "Later"
    path = write_csv(tmp_path / "race.csv", HEADER, rows)
    with path.open("rb") as handle:
        job = services.import_start(file=File(handle), filename=path.name, enqueue=False)
    services.import_split(job_id=job.pk, enqueue=False)
    first, second = (str(pk) for pk in job.batches.order_by("batch_number").values_list("pk", flat=True))

    # The first chunk has inserted its leads and holds its transaction open until the second chunk's
    # insert is waiting on its row: the second lookup did not see the email, its insert must lose.
    inserted, release = threading.Event(), threading.Event()
    real_revisions_insert = lead_services._revisions_insert

    def revisions_insert(*args, **kwargs):
        if threading.current_thread().name == "first":
            inserted.set()
            release.wait(10)
        return real_revisions_insert(*args, **kwargs)

    monkeypatch.setattr(lead_services, "_revisions_insert", revisions_insert)
    results, errors = {}, []

    def store(name: str, batch_id: str) -> None:
        try:
            results[name] = services.batch_standardize(batch_id=batch_id)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = {
        name: threading.Thread(target=store, args=(name, pk), name=name)
        for name, pk in (("first", first), ("second", second))
    }
    threads["first"].start()
    assert inserted.wait(10)
    threads["second"].start()
    deadline = time.monotonic() + 10
    while _lock_waiters() < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    waited = _lock_waiters()
    release.set()
    for thread in threads.values():
        thread.join(20)

    assert waited == 1  # the race was played: the second insert waited on the first's row
    assert errors == []
    assert results == {"first": ImportBatch.Status.DONE, "second": ImportBatch.Status.DONE}
    assert set(job.batches.values_list("attempts", "last_error")) == {(1, "")}  # nothing requeued
    job.refresh_from_db()
    assert job.status == ImportJob.Status.COMPLETED
    assert (job.leads_created, job.leads_updated) == (19, 1)
    lead = Lead.objects.get(email="twice@example.com")
    assert (lead.first_name, lead.source_sequence) == ("Later", 13)  # the later row won
    assert LeadRevision.objects.filter(lead=lead).count() == 2  # its creation, then the update
    outcomes = {
        result["row"]: result["outcome"]
        for batch in job.batches.all()
        for result in batch.results
        if result["row"] in (4, 14)  # rows 3 and 13 under the header line
    }
    assert outcomes == {4: "created", 14: "updated"}
