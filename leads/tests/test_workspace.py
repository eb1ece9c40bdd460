"""Working on leads: editing a lead, notes, the history, bulk actions, saved views, filter chips, the
status/owner filters and sorts, and the insights page."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from easycrm.testing.http import HTMX
from leads import editing
from leads.filters import LeadQuery, leads_filter
from leads.models import Lead, LeadChange, LeadNote, LeadRevision, SavedView
from processing.models import ImportJob

pytestmark = pytest.mark.django_db

LIST = reverse("leads:list")
BULK = reverse("leads:bulk")
INSIGHTS = reverse("leads:insights")
VIEW_CREATE = reverse("leads:view_create")


def edit_url(lead: Lead) -> str:
    return reverse("leads:edit", args=[lead.pk])


def note_url(lead: Lead) -> str:
    return reverse("leads:note_add", args=[lead.pk])


def lead_values(lead: Lead, **changes) -> dict:
    values = {
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "title": lead.title,
        "company": lead.company,
        "email": lead.email,
        "phone": lead.phone,
        "remarks": lead.remarks,
        "status": lead.status,
        "owner": lead.owner_id or "",
    }
    return {**values, **changes}


@pytest.fixture
def lead() -> Lead:
    return Lead.objects.create(
        first_name="Ada", last_name="Lovelace", company="Engines", email="ada@example.com"
    )


@pytest.fixture
def thirty_leads() -> list[Lead]:
    Lead.objects.bulk_create(Lead(first_name=f"lead{i:02}", company="Acme") for i in range(30))
    return list(Lead.objects.order_by("pk"))


# --- Access, for every new view --------------------------------------------------------------


@pytest.fixture(params=["edit", "note", "bulk", "view_create", "view_delete"])
def post_url(request, lead, viewer) -> str:
    view = SavedView.objects.create(user=viewer, name="Mine")
    return {
        "edit": edit_url(lead),
        "note": note_url(lead),
        "bulk": BULK,
        "view_create": VIEW_CREATE,
        "view_delete": reverse("leads:view_delete", args=[view.pk]),
    }[request.param]


def test_anonymous_post_is_sent_to_login(client, post_url):
    response = client.post(post_url)

    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_outsider_may_not_post(outsider_client, post_url):
    assert outsider_client.post(post_url).status_code == 403


def test_get_is_not_allowed_on_actions(importer_client, post_url):
    assert importer_client.get(post_url).status_code == 405


def test_actions_need_the_csrf_token(client, importer, lead):
    client = type(client)(enforce_csrf_checks=True)
    client.force_login(importer)

    assert client.post(edit_url(lead), lead_values(lead, title="CEO")).status_code == 403
    assert client.post(BULK, {"action": "delete", "ids": [lead.pk], "confirmed": "1"}).status_code == 403
    assert Lead.objects.filter(pk=lead.pk, title="").exists()


def test_viewer_may_not_edit_or_add_notes(viewer_client, lead):
    assert viewer_client.post(edit_url(lead), lead_values(lead, title="CEO")).status_code == 403
    assert viewer_client.post(note_url(lead), {"text": "hi"}).status_code == 403
    assert not LeadChange.objects.exists() and not LeadNote.objects.exists()


def test_insights_access(outsider_client, lead):
    assert Client().get(INSIGHTS).status_code == 302
    assert outsider_client.get(INSIGHTS).status_code == 403
    assert outsider_client.post(INSIGHTS).status_code == 403


# --- Editing a lead --------------------------------------------------------------------------


def test_importer_sees_the_edit_form_and_a_viewer_does_not(client, importer, viewer, lead):
    client.force_login(importer)
    importer_html = client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    client.force_login(viewer)
    viewer_html = client.get(reverse("leads:detail", args=[lead.pk])).content.decode()

    assert f'action="{edit_url(lead)}"' in importer_html and f'hx-post="{edit_url(lead)}"' in importer_html
    assert 'name="status"' in importer_html and 'name="owner"' in importer_html
    assert f'action="{edit_url(lead)}"' not in viewer_html


def test_editing_saves_the_fields_and_records_who_changed_what(importer_client, importer, lead):
    response = importer_client.post(
        edit_url(lead), lead_values(lead, title="CTO", status="contacted", owner=importer.pk)
    )

    assert response.status_code == 302 and response["Location"] == reverse("leads:detail", args=[lead.pk])
    lead.refresh_from_db()
    assert (lead.title, lead.status, lead.owner) == ("CTO", "contacted", importer)
    changes = {(c.field, c.before, c.after, c.user_id) for c in LeadChange.objects.all()}
    assert changes == {
        ("title", "", "CTO", importer.pk),
        ("status", "new", "contacted", importer.pk),
        ("owner", "", "imogen", importer.pk),
    }
    html = importer_client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert "Saved: title, status, owner." in html
    assert re.search(r"<strong>imogen</strong> changed title: .*\(empty\).* → .*CTO", html)


def test_history_shows_edits_next_to_imports(importer_client, importer, lead):
    job = ImportJob.objects.create(original_filename="fair.xlsx")
    LeadRevision.objects.create(lead=lead, job=job, action="created")
    editing.lead_update(lead=lead, user=importer, values={"company": "Analytical Engines"})

    html = importer_client.get(reverse("leads:detail", args=[lead.pk])).content.decode()

    history = html[html.index('id="history-title"') :]
    assert history.index("changed company") < history.index("Created by the import of")
    assert "fair.xlsx" in history


def test_htmx_edit_returns_the_lead_fragment_with_a_notice(importer_client, lead):
    response = importer_client.post(edit_url(lead), lead_values(lead, title="CTO"), **HTMX)

    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert 'id="lead"' in html and "Saved: title." in html


def test_unchanged_form_records_nothing(importer_client, lead):
    importer_client.post(edit_url(lead), lead_values(lead))

    assert not LeadChange.objects.exists()


def test_phone_is_normalized_as_on_import(importer_client, lead, settings):
    settings.DEFAULT_PHONE_REGION = "DE"

    importer_client.post(edit_url(lead), lead_values(lead, phone="030 1234567"))

    lead.refresh_from_db()
    assert lead.phone == "+49301234567"


def test_email_is_normalized(importer_client, lead):
    importer_client.post(edit_url(lead), lead_values(lead, email="  Ada.L@Example.COM "))

    lead.refresh_from_db()
    assert lead.email == "ada.l@example.com"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"email": "not an email"}, "email", "Enter a valid email address"),
        ({"phone": "call me"}, "phone", "Enter a phone number"),
        ({"status": "won"}, "status", "Select a valid choice"),
        ({"owner": "999999"}, "owner", "Select a valid choice"),
    ],
)
def test_bad_input_is_shown_next_to_the_field(importer_client, lead, changes, field, message):
    response = importer_client.post(edit_url(lead), lead_values(lead, **changes))

    html = response.content.decode()
    assert response.status_code == 400
    error = re.search(rf'<div class="field field-{field} has-error">.*?</div>', html, re.S).group(0)
    assert message in error
    assert 'aria-invalid="true"' in error
    assert not LeadChange.objects.exists()


def test_an_email_another_lead_has_is_refused(importer_client, lead):
    Lead.objects.create(first_name="Bob", email="bob@example.com")

    response = importer_client.post(edit_url(lead), lead_values(lead, email="BOB@example.com"))

    assert response.status_code == 400
    assert "Another lead (Bob) already has this email." in response.content.decode()
    lead.refresh_from_db()
    assert lead.email == "ada@example.com"


def test_htmx_edit_with_errors_returns_the_fragment(importer_client, lead):
    response = importer_client.post(edit_url(lead), lead_values(lead, email="nope"), **HTMX)

    # 200: htmx swaps only successful responses, and the form with its errors must replace the old one.
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html and "Enter a valid email address" in html


def test_missing_lead_is_404(importer_client):
    assert importer_client.post(reverse("leads:edit", args=[999999]), {}).status_code == 404


# --- Notes -----------------------------------------------------------------------------------


def test_adding_a_note_shows_it_in_the_timeline(importer_client, importer, lead):
    response = importer_client.post(note_url(lead), {"text": "Called, <b>call back</b> Monday"})

    assert response.status_code == 302
    note = LeadNote.objects.get()
    assert (note.lead, note.author, note.text) == (lead, importer, "Called, <b>call back</b> Monday")
    html = importer_client.get(reverse("leads:detail", args=[lead.pk])).content.decode()
    assert "Called, &lt;b&gt;call back&lt;/b&gt; Monday" in html


def test_an_empty_note_is_refused(importer_client, lead):
    response = importer_client.post(note_url(lead), {"text": "   "})

    assert response.status_code == 400 and "Write something first." in response.content.decode()
    assert not LeadNote.objects.exists()


def test_htmx_note_returns_the_fragment(importer_client, lead):
    response = importer_client.post(note_url(lead), {"text": "hello"}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html and "Note added." in html


# --- Bulk actions ----------------------------------------------------------------------------


def test_bulk_status_asks_first_with_the_count(importer_client, thirty_leads):
    ids = [lead.pk for lead in thirty_leads[:12]]

    response = importer_client.post(BULK, {"action": "status", "status": "qualified", "ids": ids})

    html = response.content.decode()
    assert response.status_code == 200
    assert "Set the status of 12 leads to qualified?" in html
    assert 'name="confirmed" value="1"' in html
    assert not Lead.objects.filter(status="qualified").exists()


def test_confirmed_bulk_status_changes_the_leads_and_records_each(importer_client, importer, thirty_leads):
    ids = [lead.pk for lead in thirty_leads[:12]]

    response = importer_client.post(
        BULK,
        {"action": "status", "status": "qualified", "ids": ids, "confirmed": "1", "query": "company=acme"},
    )

    assert response.status_code == 302 and response["Location"] == f"{LIST}?company=acme"
    assert set(Lead.objects.filter(status="qualified").values_list("pk", flat=True)) == set(ids)
    assert (
        LeadChange.objects.filter(field="status", before="new", after="qualified", user=importer).count()
        == 12
    )


def test_bulk_assign_all_matching_uses_the_table_query(importer_client, importer, thirty_leads):
    Lead.objects.create(first_name="other", company="Globex")

    importer_client.post(
        BULK,
        {
            "action": "owner",
            "owner": importer.pk,
            "all_matching": "1",
            "query": "company=acme",
            "confirmed": "1",
        },
    )

    assert Lead.objects.filter(owner=importer).count() == 30
    assert Lead.objects.get(first_name="other").owner is None


def test_bulk_unassign(importer_client, importer, thirty_leads):
    Lead.objects.update(owner=importer)

    importer_client.post(
        BULK, {"action": "owner", "owner": "none", "ids": [thirty_leads[0].pk], "confirmed": "1"}
    )

    assert Lead.objects.filter(owner__isnull=True).count() == 1
    assert LeadChange.objects.get().after == ""


def test_bulk_delete_needs_the_delete_permission(client, viewer, importer, thirty_leads):
    ids = [lead.pk for lead in thirty_leads[:3]]
    data = {"action": "delete", "ids": ids, "confirmed": "1"}

    client.force_login(viewer)
    assert client.post(BULK, data).status_code == 403
    assert Lead.objects.count() == 30
    client.force_login(importer)
    response = client.post(BULK, {"action": "delete", "ids": ids})
    assert "Delete 3 leads?" in response.content.decode()
    client.post(BULK, data)
    assert Lead.objects.count() == 27


def test_viewer_may_export_selected_but_not_change_them(viewer_client, thirty_leads):
    ids = [thirty_leads[0].pk, thirty_leads[1].pk]

    response = viewer_client.post(BULK, {"action": "export", "ids": ids})

    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode().removeprefix("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    assert sorted(row[1] for row in rows[1:]) == ["lead00", "lead01"]
    assert viewer_client.post(BULK, {"action": "status", "status": "new", "ids": ids}).status_code == 403


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "status", "status": "qualified"}, "Select at least one lead first."),
        ({"action": "status", "ids": ["1"]}, "Choose the status to set."),
        ({"action": "owner", "ids": ["1"], "owner": "abc"}, "Choose an owner from the list."),
        ({"action": "launch", "ids": ["1"]}, "Select a valid choice"),
    ],
)
def test_bad_bulk_input_is_explained(importer_client, thirty_leads, data, message):
    response = importer_client.post(BULK, data)

    assert response.status_code == 400 and message in response.content.decode()


def test_bulk_htmx_variants_return_fragments(importer_client, thirty_leads):
    ids = [thirty_leads[0].pk]
    confirm = importer_client.post(BULK, {"action": "status", "status": "contacted", "ids": ids}, **HTMX)
    done = importer_client.post(
        BULK, {"action": "status", "status": "contacted", "ids": ids, "confirmed": "1"}, **HTMX
    )

    assert "<html" not in confirm.content.decode() and 'id="bulk-confirm"' in confirm.content.decode()
    assert (
        "<html" not in done.content.decode()
        and "Set the status of 1 lead to contacted." in done.content.decode()
    )
    assert "leads-changed" in done["HX-Trigger"]


def test_bulk_refuses_more_than_the_limit(importer_client, thirty_leads, monkeypatch):
    monkeypatch.setattr(editing, "BULK_LIMIT", 10)

    response = importer_client.post(BULK, {"action": "status", "status": "qualified", "all_matching": "1"})

    assert response.status_code == 400 and "At most 10 leads at once" in response.content.decode()


def test_table_rows_have_checkboxes_of_the_bulk_form(importer_client, thirty_leads):
    html = importer_client.get(LIST).content.decode()

    assert f'<form id="bulk-form" method="post" action="{BULK}" hx-post="{BULK}"' in html
    assert f'name="ids" value="{thirty_leads[-1].pk}" form="bulk-form"' in html
    assert 'name="all_matching" value="1" form="bulk-form"' in html
    assert 'value="delete" form="bulk-form"' in html


def test_viewer_is_offered_only_the_export_of_selected_leads(viewer_client, thirty_leads):
    html = viewer_client.get(LIST).content.decode()

    assert 'value="export" form="bulk-form"' in html
    assert 'value="delete"' not in html and 'value="status" form="bulk-form"' not in html


# --- The record the import upsert consults ---------------------------------------------------


def test_leads_edited_fields_lists_the_standard_fields_people_changed(importer, lead, thirty_leads):
    other = thirty_leads[0]
    editing.lead_update(lead=lead, user=importer, values={"email": "a@b.co", "status": "qualified"})
    editing.lead_update(lead=lead, user=importer, values={"phone": "+15550100"})
    editing.leads_bulk_update(leads=Lead.objects.filter(pk=other.pk), user=importer, status="contacted")

    assert editing.leads_edited_fields([lead.pk, other.pk, 999]) == {lead.pk: {"email", "phone"}}


# --- Status and owner in the table -----------------------------------------------------------


def test_filter_and_sort_by_status_and_owner(importer, thirty_leads):
    Lead.objects.filter(pk__in=[lead.pk for lead in thirty_leads[:5]]).update(
        status="qualified", owner=importer
    )

    assert leads_filter(LeadQuery.from_params({"status": "qualified"})).count() == 5
    assert leads_filter(LeadQuery.from_params({"owner": str(importer.pk)})).count() == 5
    assert leads_filter(LeadQuery.from_params({"owner": "none"})).count() == 25
    first = leads_filter(LeadQuery.from_params({"sort": "owner"})).first()
    assert first.owner == importer
    assert leads_filter(LeadQuery.from_params({"sort": "-status"})).first().status == "qualified"


def test_bad_status_and_owner_are_ignored_with_a_reason():
    query = LeadQuery.from_params({"status": "won", "owner": "bob"})

    assert (query.status, query.owner) == ("", "")
    assert any("status “won”" in problem for problem in query.problems)
    assert any("owner “bob”" in problem for problem in query.problems)


# --- Filter chips ----------------------------------------------------------------------------


def test_every_active_filter_is_a_removable_chip_with_clear_all(viewer_client, viewer, lead):
    params = {
        "q": "ada",
        "status": "new",
        "owner": str(viewer.pk),
        "c": "company:equals:Engines",
        "has_phone": "no",
    }

    html = viewer_client.get(LIST, params).content.decode()

    chips = html[html.index('aria-label="Active filters"') :]
    chips = chips[: chips.index("</ul>")]
    for label in (
        "Search “ada”",
        "Status is new",
        "Owner is victor",
        "Company equals &#x27;Engines&#x27;",
        "No phone",
    ):
        assert label in chips
    assert (
        f'href="{LIST}?status=new&amp;owner={viewer.pk}&amp;q=ada&amp;has_phone=no"' in chips
    )  # no condition
    assert f'<a class="clear-all" href="{LIST}"' in chips


def test_chat_show_in_table_conditions_are_chips_and_kept_by_the_form(viewer_client, lead):
    html = viewer_client.get(LIST, {"c": ["email_domain:equals:example.com"]}).content.decode()

    assert "Email domain equals &#x27;example.com&#x27;" in html
    assert '<input type="hidden" name="c" value="email_domain:equals:example.com">' in html


def test_no_chips_without_filters(viewer_client, lead):
    assert 'aria-label="Active filters"' not in viewer_client.get(LIST).content.decode()


def test_export_is_disabled_with_zero_leads(viewer_client):
    html = viewer_client.get(LIST).content.decode()

    assert '<span class="button small-button" aria-disabled="true"' in html
    assert 'href="/leads/export.csv"' not in html


def test_dates_show_the_time_zone(viewer_client, lead, settings):
    settings.TIME_ZONE = "Europe/Berlin"

    list_html = viewer_client.get(LIST).content.decode()
    detail_html = viewer_client.get(reverse("leads:detail", args=[lead.pk])).content.decode()

    assert "(Europe/Berlin)" in list_html
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d (CET|CEST)", detail_html)


# --- Saved views -----------------------------------------------------------------------------


def test_saving_a_view_adds_a_tab_for_its_owner_only(viewer_client, viewer, django_user_model, lead):
    response = viewer_client.post(
        VIEW_CREATE, {"name": "Engines", "query": "company=eng&sort=-company&page=3"}
    )

    assert response.status_code == 302 and response["Location"] == f"{LIST}?company=eng&sort=-company"
    view = SavedView.objects.get()
    assert (view.user, view.name, view.querystring) == (viewer, "Engines", "company=eng&sort=-company")
    html = viewer_client.get(LIST, {"company": "eng", "sort": "-company"}).content.decode()
    assert f'<a href="{LIST}?company=eng&amp;sort=-company" aria-current="page">Engines</a>' in html
    other = django_user_model.objects.create_user("other")
    other.groups.add(Group.objects.get(name="viewer"))
    viewer_client.force_login(other)
    assert ">Engines</a>" not in viewer_client.get(LIST).content.decode()


def test_a_duplicate_view_name_is_refused(viewer_client, viewer):
    SavedView.objects.create(user=viewer, name="Mine")

    response = viewer_client.post(VIEW_CREATE, {"name": "Mine", "query": ""}, follow=True)

    assert "You already have a view with this name." in response.content.decode()
    assert SavedView.objects.count() == 1


def test_an_empty_view_name_is_refused(viewer_client):
    viewer_client.post(VIEW_CREATE, {"name": " ", "query": ""})

    assert not SavedView.objects.exists()


def test_deleting_another_users_view_is_404(viewer_client, django_user_model):
    view = SavedView.objects.create(user=django_user_model.objects.create_user("other"), name="Theirs")

    assert viewer_client.post(reverse("leads:view_delete", args=[view.pk])).status_code == 404
    assert SavedView.objects.exists()


def test_deleting_ones_view(viewer_client, viewer):
    view = SavedView.objects.create(user=viewer, name="Mine")

    response = viewer_client.post(reverse("leads:view_delete", args=[view.pk]))

    assert response.status_code == 302 and not SavedView.objects.exists()


def test_htmx_saved_view_create_redirects_client_side(viewer_client):
    response = viewer_client.post(VIEW_CREATE, {"name": "Mine", "query": "status=new"}, **HTMX)

    assert response.status_code == 204 and response["HX-Location"] == f"{LIST}?status=new"


# --- Insights --------------------------------------------------------------------------------


def test_insights_charts_link_to_the_filtered_table(viewer_client):
    Lead.objects.create(
        first_name="a", company="Globex", title="CTO", email="a@globex.com", source_file="x.csv"
    )
    Lead.objects.create(first_name="b", company="Globex", email="b@globex.com", source_file="x.csv")
    Lead.objects.create(first_name="c", company="Initech")

    response = viewer_client.get(INSIGHTS)

    html = response.content.decode()
    assert response.status_code == 200
    for text in (
        "Top companies",
        "Top email domains",
        "Top titles",
        "Leads by source file",
        "Leads added per day",
    ):
        assert text in html
    assert f'href="{LIST}?c=company%3Aequals%3AGlobex"' in html
    assert f'href="{LIST}?c=email_domain%3Aequals%3Aglobex.com"' in html
    assert f'href="{LIST}?c=source%3Aequals%3Ax.csv"' in html
    assert "Email (67%)" in html
    linked = viewer_client.get(f"{LIST}?c=company%3Aequals%3AGlobex").content.decode()
    assert "Showing 1–2 of 2" in linked


def test_insights_htmx_returns_the_charts_only(viewer_client, lead):
    html = viewer_client.get(INSIGHTS, **HTMX).content.decode()

    assert "<html" not in html and 'id="insights"' in html


def test_insights_with_no_leads(viewer_client):
    html = viewer_client.get(INSIGHTS).content.decode()

    assert "Nothing to show yet." in html and "of 0 leads" in html


# --- Small things ----------------------------------------------------------------------------


def test_a_from_date_after_the_to_date_is_explained(viewer_client, lead):
    html = viewer_client.get(
        LIST, {"updated_from": "2025-02-01", "updated_to": "2025-01-01"}
    ).content.decode()

    assert "Updated from 2025-02-01 is after updated to 2025-01-01: no lead can match." in html


def test_a_csv_source_is_not_shown_twice(viewer_client):
    Lead.objects.create(first_name="Ada", worksheet="march", source_file="march.csv")
    Lead.objects.create(first_name="Bob", worksheet="Visitors", source_file="fair.xlsx")

    html = viewer_client.get(LIST).content.decode()

    assert '<td class="c-source" title="march.csv">march.csv</td>' in html
    assert '<td class="c-source" title="Visitors · fair.xlsx">Visitors · fair.xlsx</td>' in html


def test_long_emails_may_wrap_at_their_joints(viewer_client):
    Lead.objects.create(first_name="Ada", email="ada.lovelace@analytical-engines.co.uk")

    html = viewer_client.get(LIST).content.decode()

    assert ">ada.<wbr>lovelace<wbr>@analytical-engines.<wbr>co.<wbr>uk</a>" in html


def test_admin_is_branded(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()

    assert "Easy CRM administration" in html and "Django administration" not in html


def test_the_page_has_a_favicon(viewer_client):
    assert 'rel="icon" href="/static/favicon.svg"' in viewer_client.get(LIST).content.decode()


def test_finished_imports_of_the_last_day_are_one_recent_imports_line(importer_client, importer):
    ImportJob.objects.create(original_filename="april.csv", uploaded_by=importer, status="completed")
    ImportJob.objects.create(original_filename="may.csv", uploaded_by=importer, status="processing")

    html = importer_client.get(LIST).content.decode()

    line = re.search(r'<p class="recent-imports[^>]*>.*?</p>', html, re.S).group(0)
    assert "april.csv</a> (completed)" in line and "may.csv" not in line
    assert 'id="import-' in html  # the running one keeps its panel


def test_a_finished_panel_offers_to_dismiss_it(importer_client, importer):
    job = ImportJob.objects.create(original_filename="april.csv", uploaded_by=importer, status="completed")

    html = importer_client.get(reverse("processing:status", args=[job.pk]), **HTMX).content.decode()

    assert 'data-dismiss-import aria-label="Dismiss the panel of april.csv"' in html


def test_insights_are_cached_until_a_lead_is_added_or_written(viewer_client, lead):
    assert "Initech" not in viewer_client.get(INSIGHTS).content.decode()

    Lead.objects.create(first_name="Bob", company="Initech")

    assert "Initech" in viewer_client.get(INSIGHTS).content.decode()


def test_an_email_taken_between_check_and_save_is_an_error_not_a_crash(importer_client, lead, monkeypatch):
    from django.db import IntegrityError

    def taken(**kwargs):
        raise IntegrityError("lead_unique_nonempty_email")

    monkeypatch.setattr(editing, "lead_update", taken)

    response = importer_client.post(edit_url(lead), lead_values(lead, email="new@example.com"))

    assert response.status_code == 400
    assert "Another lead already has this email." in response.content.decode()
