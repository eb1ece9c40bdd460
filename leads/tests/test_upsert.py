"""leads.services.leads_upsert at the level of the rows it writes: what each write stores, what undo
gets back, and the retry when another import inserts the same email first. The import pipeline's
own guarantees (outcomes, later row wins, person-edited fields) are in processing/tests."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection
from django.utils import timezone

from leads import services
from leads.models import LEAD_FIELDS, Lead, LeadRevision, default_status
from leads.services import LeadInput, leads_restore, leads_upsert
from processing.models import ImportJob

pytestmark = pytest.mark.django_db


def _row(seq: int, **fields: str) -> LeadInput:
    cells = {"Name": fields.get("first_name", ""), "Mail": fields.get("email", ""), "Côté": 'ü, "quoted"'}
    return LeadInput(fields=fields, cells=cells, worksheet="Sheet 1", row=seq + 2, seq=seq)


def _job(name: str, *, minutes: int = 0) -> ImportJob:
    job = ImportJob.objects.create(original_filename=name, size=1)
    ImportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() + timedelta(minutes=minutes))
    job.refresh_from_db()
    return job


def _as_stored(lead: Lead) -> dict:
    """What the revision of an update must hold: the lead as the ORM reads it before the update."""
    snapshot = {name: getattr(lead, name) for name in services.SNAPSHOT_FIELDS}
    snapshot["import_job_id"] = str(lead.import_job_id) if lead.import_job_id else None
    snapshot["updated_at"] = lead.updated_at.isoformat()
    return snapshot


def test_new_leads_are_stored_with_every_column_and_a_creation_revision():
    job = _job("first.csv")
    outcomes = leads_upsert(
        rows=[
            _row(1, first_name="Ada", email=" Ada@Example.com "),
            _row(2, first_name="Bob", phone="+1 415"),
        ],
        job=job,
        source_file="first.csv",
    )
    assert [o.outcome for o in outcomes] == ["created", "created"]
    ada = Lead.objects.get(pk=outcomes[0].lead_id)
    assert (ada.email, ada.first_name, ada.phone, ada.status, ada.owner_id) == (
        "ada@example.com",
        "Ada",
        "",
        default_status(),
        None,
    )
    assert (ada.source_file, ada.worksheet, ada.source_row, ada.source_sequence) == (
        "first.csv",
        "Sheet 1",
        3,
        1,
    )
    assert list(ada.raw.items()) == [("Name", "Ada"), ("Mail", " Ada@Example.com "), ("Côté", 'ü, "quoted"')]
    assert ada.import_job_id == job.pk and ada.created_at == ada.updated_at
    revisions = LeadRevision.objects.filter(job=job).order_by("lead_id")
    assert [(r.lead_id, r.action, r.before, r.created_at) for r in revisions] == [
        (outcome.lead_id, "created", {}, Lead.objects.get(pk=outcome.lead_id).updated_at)
        for outcome in sorted(outcomes, key=lambda outcome: outcome.lead_id)
    ]


def test_an_update_writes_only_what_changed_and_its_revision_holds_the_lead_as_it_was():
    first = _job("first.csv")
    [created] = leads_upsert(
        rows=[_row(1, first_name="Ada", last_name="Lovelace", email="ada@example.com", title="Countess")],
        job=first,
        source_file="first.csv",
    )
    before = Lead.objects.get(pk=created.lead_id)
    second = _job("second.csv", minutes=1)
    [updated] = leads_upsert(
        rows=[_row(7, first_name="Ada", email="ADA@example.com", title="Analyst", remarks="Met at the fair")],
        job=second,
        source_file="second.csv",
    )
    assert (updated.outcome, updated.lead_id) == ("updated", created.lead_id)
    after = Lead.objects.get(pk=created.lead_id)
    assert (after.title, after.remarks, after.last_name) == ("Analyst", "Met at the fair", "Lovelace")
    assert (after.source_file, after.source_row, after.import_job_id) == ("second.csv", 9, second.pk)
    assert after.created_at == before.created_at and after.updated_at > before.updated_at
    assert list(after.raw.items()) == [("Name", "Ada"), ("Mail", "ADA@example.com"), ("Côté", 'ü, "quoted"')]
    revision = LeadRevision.objects.get(job=second)
    assert revision.action == "updated" and revision.created_at == after.updated_at
    assert revision.before == _as_stored(before)
    assert list(revision.before["raw"]) == ["Name", "Mail", "Côté"]

    leads_restore(revision_ids=[revision.pk])
    restored = Lead.objects.get(pk=created.lead_id)
    assert _as_stored(restored) == _as_stored(before)
    assert {name: getattr(restored, name) for name in LEAD_FIELDS} == {
        name: getattr(before, name) for name in LEAD_FIELDS
    }


def test_an_unchanged_row_writes_nothing():
    job = _job("first.csv")
    row = _row(1, first_name="Ada", email="ada@example.com")
    [created] = leads_upsert(rows=[row], job=job, source_file="first.csv")
    before = Lead.objects.get(pk=created.lead_id)
    again = _job("again.csv", minutes=1)
    [outcome] = leads_upsert(rows=[row], job=again, source_file="again.csv")
    assert (outcome.outcome, outcome.lead_id) == ("unchanged", created.lead_id)
    after = Lead.objects.get(pk=created.lead_id)
    assert (after.updated_at, after.source_file, after.import_job_id) == (
        before.updated_at,
        "first.csv",
        job.pk,
    )
    assert not LeadRevision.objects.filter(job=again).exists()


def test_rows_without_email_find_their_lead_by_name_and_company_whatever_the_case():
    job = _job("first.csv")
    [created] = leads_upsert(
        rows=[_row(1, first_name="Ada", last_name="Lovelace", company="Analytical Engines")],
        job=job,
        source_file="first.csv",
    )
    # A namesake at another company is no match.
    leads_upsert(
        rows=[_row(2, first_name="Ada", last_name="Lovelace", company="Other Ltd")],
        job=job,
        source_file="first.csv",
    )
    later = _job("later.csv", minutes=1)
    [matched] = leads_upsert(
        rows=[
            _row(1, first_name="ADA", last_name="lovelace", company="analytical engines", title="Countess")
        ],
        job=later,
        source_file="later.csv",
    )
    assert (matched.outcome, matched.lead_id, matched.reason) == (
        "updated",
        created.lead_id,
        services.MATCHED_BY_NAME,
    )
    assert Lead.objects.get(pk=created.lead_id).title == "Countess"


ROWS_OF_ONE_FILE = [
    dict(
        first_name="Ada", last_name="Lovelace", company="Engines", email="ada@example.com", phone="+4930111"
    ),
    dict(first_name="Ada", title="Countess", phone="+4930111"),  # no email: her phone
    dict(first_name="Bob", last_name="Byte", company="Acme", phone="+4930222"),
    dict(first_name="bob", last_name="BYTE", company="acme", title="CTO"),  # no email: name + company
    dict(first_name="Cy", email="cy@example.com", phone="+4930222"),  # Bob's phone, but an email
    dict(title="VP", phone="+4930222"),  # the phone is now Cy's too: the newest lead wins it
]


@pytest.mark.parametrize("chunk", [1, 2, 6])
def test_rows_without_email_match_the_same_lead_whatever_the_chunk(chunk):
    """A row without an email finds a lead an earlier row of its file created in the same upsert, as
    it finds one written by an earlier chunk: the outcome does not depend on where chunks are cut."""
    job = _job("one.csv")
    rows = [_row(seq, **fields) for seq, fields in enumerate(ROWS_OF_ONE_FILE, start=1)]
    outcomes = []
    for start in range(0, len(rows), chunk):
        outcomes += leads_upsert(rows=rows[start : start + chunk], job=job, source_file="one.csv")
    ada, bob, cy = (Lead.objects.get(first_name__iexact=name) for name in ("Ada", "Bob", "Cy"))
    assert [(o.outcome, o.lead_id) for o in outcomes] == [
        ("created", ada.pk),
        ("updated", ada.pk),
        ("created", bob.pk),
        ("updated", bob.pk),
        ("created", cy.pk),
        ("updated", cy.pk),
    ]
    assert Lead.objects.count() == 3
    assert (ada.title, bob.title, cy.title) == ("Countess", "CTO", "VP")


def test_an_email_another_import_inserted_meanwhile_is_found_on_the_retry(monkeypatch):
    """The insert that loses the race (unique email) rolls back to its savepoint and the whole upsert
    runs again, finding the other import's lead — on PostgreSQL through COPY, on SQLite executemany.
    The race is played by a first lookup that does not see the other import's lead yet."""
    other = _job("other.csv")
    Lead.objects.create(email="ada@example.com", first_name="Ada", import_job=other, source_sequence=1)
    lookups = []
    real_lookup = services.leads_by_email

    def lookup(emails):
        lookups.append(emails)
        return {} if len(lookups) == 1 else real_lookup(emails)

    monkeypatch.setattr(services, "leads_by_email", lookup)
    job = _job("mine.csv", minutes=1)
    outcomes = leads_upsert(
        rows=[_row(1, first_name="Ada", email="ada@example.com", title="CTO"), _row(2, email="bo@x.org")],
        job=job,
        source_file="mine.csv",
    )
    assert len(lookups) == 2
    assert [o.outcome for o in outcomes] == ["updated", "created"]
    assert Lead.objects.filter(email="ada@example.com").count() == 1
    assert Lead.objects.get(email="ada@example.com").title == "CTO"
    assert Lead.objects.filter(email="bo@x.org").count() == 1
    assert LeadRevision.objects.filter(job=job).count() == 2


def test_several_lost_races_in_a_row_are_retried_while_each_finds_more(monkeypatch):
    """Several writers overlapping one chunk can each win one of its new emails: every run finds one
    more of them, so the upsert keeps going (not a fixed number of tries) and the chunk is stored."""
    other = _job("other.csv")
    emails = ["a@race.org", "b@race.org", "c@race.org"]
    for email in emails:
        Lead.objects.create(email=email, first_name="Other", import_job=other, source_sequence=1)
    lookups = []
    real_lookup = services.leads_by_email

    def lookup(wanted):
        # Run n sees the leads of the first n - 1 writers only: three lost races, then success.
        lookups.append(wanted)
        visible = set(emails[: len(lookups) - 1])
        return {email: record for email, record in real_lookup(wanted).items() if email in visible}

    monkeypatch.setattr(services, "leads_by_email", lookup)
    job = _job("mine.csv", minutes=1)
    outcomes = leads_upsert(
        rows=[_row(seq, first_name="Mine", email=email) for seq, email in enumerate(emails, 1)],
        job=job,
        source_file="mine.csv",
    )
    assert len(lookups) == 4
    assert [o.outcome for o in outcomes] == ["updated"] * 3
    assert set(Lead.objects.values_list("first_name", flat=True)) == {"Mine"}


def test_an_insert_failing_without_a_new_lead_to_find_is_not_retried_forever(monkeypatch):
    other = _job("other.csv")
    Lead.objects.create(email="ada@example.com", first_name="Ada", import_job=other, source_sequence=1)
    lookups = []
    monkeypatch.setattr(services, "leads_by_email", lambda emails: lookups.append(emails) or {})
    with pytest.raises(IntegrityError):
        leads_upsert(rows=[_row(1, email="ada@example.com")], job=_job("mine.csv"), source_file="m.csv")
    assert len(lookups) == 2  # the second run found nothing the first had not: a real conflict


def test_the_name_lookup_reads_only_matching_leads():
    """The loose-key lookup is one index search on (lower last, lower first, lower company): no lead
    that merely shares a last name is read (it used to read every lead with that last name)."""
    job = _job("first.csv")
    leads_upsert(
        rows=[_row(i, first_name=f"Person{i}", last_name="Smith", company="Acme") for i in range(40)],
        job=job,
        source_file="first.csv",
    )
    found = services._leads_by_loose_keys([("person3", "smith", "", "acme", "", "", "")])
    assert {record.values[0] for record in found.values()} == {"Person3"}
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM leads_lead WHERE LOWER(last_name) IN (%s) "
                "AND LOWER(first_name) IN (%s) AND LOWER(company) IN (%s)",
                ["smith", "person3", "acme"],
            )
            plan = " ".join(str(row) for row in cursor.fetchall())
        assert "lead_name_lower_idx" in plan


def test_a_reimport_that_changes_a_lead_and_back_within_the_file_writes_nothing():
    """The same email twice in one file (title A, then title B): the lead ends with B. Importing the
    file again changes it to A and back to B — both rows are unchanged and nothing is written."""
    rows = [
        _row(1, first_name="Ada", email="ada@example.com", title="CTO"),
        _row(2, first_name="Bo", email="bo@example.com"),
        _row(3, first_name="Ada", email="ada@example.com", title="CEO"),
    ]
    leads_upsert(rows=rows, job=_job("first.csv"), source_file="first.csv")
    ada = Lead.objects.get(email="ada@example.com")
    assert ada.title == "CEO"
    again = _job("first.csv", minutes=1)
    outcomes = leads_upsert(rows=rows, job=again, source_file="first.csv")
    assert [(o.outcome, o.reason) for o in outcomes] == [
        ("unchanged", services.RESTORED_IN_FILE),
        ("unchanged", ""),
        ("unchanged", services.RESTORED_IN_FILE),
    ]
    after = Lead.objects.get(pk=ada.pk)
    assert (after.title, after.updated_at, after.import_job_id) == ("CEO", ada.updated_at, ada.import_job_id)
    assert not LeadRevision.objects.filter(job=again).exists()
