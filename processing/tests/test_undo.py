"""Undoing an import: the revisions lead_upsert records and the rule for when undo is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files import File

from easycrm.testing.files import HEADER, people, write_csv
from leads.models import Lead, LeadRevision
from processing import services, undo
from processing.models import ImportBatch, ImportJob

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def imported(import_file, tmp_path):
    """Import rows (HEADER columns) from a CSV written on the fly."""

    def run(name: str, rows: list[list[str]]) -> ImportJob:
        return import_file(write_csv(tmp_path / name, HEADER, rows))

    return run


def lead_values(email: str) -> tuple:
    lead = Lead.objects.get(email=email)
    return lead.first_name, lead.company, lead.phone, lead.source_file, lead.import_job_id, lead.updated_at


def test_import_records_one_revision_per_lead_write(imported):
    first = imported("first.csv", people(2))
    second = imported("second.csv", [["Ann", "Lee", "Contoso", "person0@example.com", ""]])

    assert list(first.lead_revisions.values_list("action", flat=True)) == ["created", "created"]
    revision = second.lead_revisions.get()
    lead = Lead.objects.get(email="person0@example.com")
    assert revision.action == LeadRevision.Action.UPDATED and revision.lead == lead
    assert revision.before["first_name"] == "First0" and revision.before["company"] == "Company 0"
    assert revision.before["import_job_id"] == str(first.pk)
    assert revision.created_at == lead.updated_at


def test_undo_removes_created_leads_and_marks_the_import_undone(
    imported, django_user_model, django_capture_on_commit_callbacks
):
    kept = imported("kept.csv", [["Bo", "Chen", "Fabrikam", "bo@example.com", ""]])
    job = imported("new.csv", [*people(3), ["No", "Email", "Acme", "", ""]])
    user = django_user_model.objects.create_user("undoer")
    stored = job.file.name
    assert job.file.storage.exists(stored)

    with django_capture_on_commit_callbacks(execute=True):
        result = undo.import_undo(job=job, user=user)

    assert (result.deleted, result.restored) == (4, 0)
    assert list(Lead.objects.values_list("email", flat=True)) == ["bo@example.com"]
    job.refresh_from_db()
    assert job.undone_at is not None and job.undone_by == user
    assert job.status == ImportJob.Status.COMPLETED
    assert kept.lead_revisions.count() == 1
    assert not job.file and not kept.file.storage.exists(stored)  # the undone upload is deleted


def test_undo_restores_updated_leads_to_their_previous_values(imported):
    imported("first.csv", people(2))
    before = lead_values("person0@example.com")
    job = imported("second.csv", [["Ann", "Lee", "Contoso", "person0@example.com", "+1 415 555 9999"]])
    assert lead_values("person0@example.com") != before

    result = undo.import_undo(job=job)

    assert (result.deleted, result.restored) == (0, 1)
    assert lead_values("person0@example.com") == before
    assert Lead.objects.count() == 2


def test_undo_of_a_file_that_created_then_updated_a_lead_removes_it(imported, samples, import_file):
    job = import_file(samples / "duplicates.csv")
    assert job.leads_updated == 1

    result = undo.import_undo(job=job)

    assert result.deleted == job.leads_created
    assert not Lead.objects.exists()


def test_undo_is_refused_when_a_later_import_changed_one_of_the_leads(imported):
    job = imported("first.csv", people(3))
    imported(
        "later.csv", [["Ann", "", "", "person0@example.com", ""], ["Bo", "", "", "person1@example.com", ""]]
    )
    before = list(Lead.objects.order_by("email").values_list("first_name", flat=True))

    with pytest.raises(undo.UndoRefused, match="^2 leads were changed by a later import since; undo is"):
        undo.import_undo(job=job)

    assert list(Lead.objects.order_by("email").values_list("first_name", flat=True)) == before
    job.refresh_from_db()
    assert job.undone_at is None


def test_undo_is_refused_when_someone_edited_a_lead_afterwards(imported):
    job = imported("first.csv", people(2))
    lead = Lead.objects.get(email="person1@example.com")
    Lead.objects.filter(pk=lead.pk).update(title="Edited", updated_at=lead.updated_at + timedelta(minutes=5))

    with pytest.raises(undo.UndoRefused, match="^1 lead was changed"):
        undo.import_undo(job=job)


def test_undoing_imports_newest_first_restores_each_older_state(imported):
    older = imported("older.csv", people(2))
    newer = imported("newer.csv", [["Ann", "Lee", "Contoso", "person0@example.com", ""]])

    undo.import_undo(job=newer)
    assert Lead.objects.get(email="person0@example.com").import_job == older
    undo.import_undo(job=older)

    assert not Lead.objects.exists()


def test_second_undo_is_refused(imported):
    job = imported("first.csv", people(2))
    undo.import_undo(job=job)

    with pytest.raises(undo.UndoRefused, match="already undone"):
        undo.import_undo(job=job)


def test_undo_of_a_running_import_is_refused_until_it_is_cancelled(tmp_path, settings):
    settings.STORE_CHUNK_BATCHES = 1  # one batch stored, the other still queued
    path = write_csv(tmp_path / "running.csv", HEADER, people(20))
    with path.open("rb") as handle:
        job = services.import_start(file=File(handle), filename="running.csv", enqueue=False)
    services.import_split(job_id=job.pk, enqueue=False)
    services.batch_standardize(batch_id=job.batches.order_by("batch_number").first().pk)
    job.refresh_from_db()

    with pytest.raises(undo.UndoRefused, match="Cancel it first"):
        undo.import_undo(job=job)
    services.import_cancel(job=job)
    result = undo.import_undo(job=job)

    assert result.deleted == 10 and not Lead.objects.exists()


def test_undo_of_an_import_that_wrote_nothing_is_refused(import_file, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    job = import_file(path)

    with pytest.raises(undo.UndoRefused, match="nothing to undo"):
        undo.import_undo(job=job)


def test_undo_of_a_cancelled_import_waits_for_its_batch_in_flight(tmp_path):
    path = write_csv(tmp_path / "running.csv", HEADER, people(20))
    with path.open("rb") as handle:
        job = services.import_start(file=File(handle), filename="running.csv", enqueue=False)
    services.import_split(job_id=job.pk, enqueue=False)
    job.batches.filter(batch_number=1).update(status=ImportBatch.Status.RUNNING)
    services.import_cancel(job=job)

    with pytest.raises(undo.UndoRefused, match="still being stored"):
        undo.import_undo(job=job)


def test_undo_restores_a_lead_whose_earlier_import_was_deleted(imported):
    older = imported("older.csv", people(1))
    newer = imported("newer.csv", [["Ann", "Lee", "Contoso", "person0@example.com", ""]])
    older.delete()

    undo.import_undo(job=newer)

    lead = Lead.objects.get()
    assert lead.first_name == "First0" and lead.import_job is None
