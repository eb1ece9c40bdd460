"""The fixed lead set the evaluation answers are checked against, (role fixtures live in the root conftest)."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
from django.utils import timezone

from easycrm.testing.http import HTMX  # noqa: F401 - re-exported for the chatbot tests
from leads.models import Lead

# "Today" for the evaluation set: a Wednesday, so "this week" is Monday 9 to Wednesday 11 June.
TODAY = date(2025, 6, 11)

# first, last, title, company, email, phone, remarks, worksheet, source file, created (= updated)
LEAD_SET = [
    ("Ada", "Lovelace", "CTO", "Globex", "ada@globex.com", "+4930111", "City: Berlin", "Fair", "fair.xlsx", "2025-06-10"),
    ("Bob", "Stone", "CEO", "Globex", "bob@globex.com", "", "City: Munich", "Fair", "fair.xlsx", "2025-06-02"),
    ("Cara", "Diaz", "Sales Manager", "Globex Berlin", "cara@globex.de", "+4930222", "City: Berlin", "Sheet1", "web.csv", "2025-06-11"),
    ("Dan", "Brown", "CTO", "Initech", "dan@initech.io", "+15550001", "", "Sheet1", "web.csv", "2025-06-09"),
    ("Eve", "Adams", "Software Engineer", "Initech", "eve@gmail.com", "", "", "Sheet1", "web.csv", "2025-05-20"),
    ("Finn", "Berg", "Head of Sales", "Umbrella", "finn@umbrella.com", "+4940333", "City: Hamburg", "Sheet2", "partners.xlsx", "2025-05-05"),
    ("Gina", "Ruiz", "CFO", "Umbrella", "", "+4930444", "City: Berlin", "Sheet2", "partners.xlsx", "2025-04-15"),
    ("Hank", "Moss", "Marketing Director", "Acme", "hank@acme.com", "", "", "Fair", "fair.xlsx", "2025-06-05"),
    ("Ivy", "Chen", "CTO", "Acme", "ivy@gmail.com", "+15550002", "Met at CeBIT", "Fair", "fair.xlsx", "2025-03-01"),
    ("Jon", "Snow", "", "Acme", "", "", "", "Sheet1", "web.csv", "2024-12-20"),
    ("Kim", "Park", "Engineer", "", "kim@yahoo.com", "+15550003", "", "Sheet1", "web.csv", "2025-06-11"),
    ("Lea", "Roth", "CEO", "Hooli", "lea@hooli.com", "+4930555", "City: Berlin", "Sheet2", "partners.xlsx", "2025-06-10"),
    # Titles written out, a company known only by its email domain, a trade show file with month sheets.
    ("Mia", "Wolf", "Chief Technology Officer", "Contoso", "mia@contoso.com", "+4930666", "City: Berlin", "March", "Trade Show 2025.xlsx", "2025-03-12"),
    ("Noah", "Kern", "VP Sales", "", "noah@contoso.com", "", "", "March", "Trade Show 2025.xlsx", "2025-03-12"),
    ("Olga", "Vogt", "Vice President of Marketing", "Initrode", "olga@initrode.com", "+15550004", "", "April", "Trade Show 2025.xlsx", "2025-04-02"),
    ("Paul", "Frey", "Chief Executive Officer", "Contoso Ltd", "paul@gmail.com", "", "City: Munich", "Leads", "newsletter_signups.csv", "2025-05-28"),
]  # fmt: skip


@pytest.fixture
def lead_set(db) -> list[Lead]:
    """Sixteen leads in nine companies (and none), created between December 2024 and TODAY (at noon)."""
    leads = Lead.objects.bulk_create(
        Lead(
            first_name=first,
            last_name=last,
            title=title,
            company=company,
            email=email,
            phone=phone,
            remarks=remarks,
            worksheet=worksheet,
            source_file=source,
        )
        for first, last, title, company, email, phone, remarks, worksheet, source, _ in LEAD_SET
    )
    for lead, row in zip(leads, LEAD_SET, strict=True):
        moment = timezone.make_aware(datetime.combine(date.fromisoformat(row[-1]), time(12)))
        Lead.objects.filter(pk=lead.pk).update(created_at=moment, updated_at=moment)
    return list(Lead.objects.order_by("pk"))
