"""The table's text sorts by index, in both directions and by keyset (issue 13): one index per sortable
text column on exactly the sort's expression, (NULLIF(LOWER(column), ''), id) — see
leads.filters.text_sort_value and docs/workspace.md. The LOWER(column) indexes of the first name,
company and title served an older form of the sort that no query uses any more; LOWER(last_name) stays
for the lookup of rows without an email (leads.services)."""

import django.db.models.functions.comparison
import django.db.models.functions.text
from django.db import migrations, models

COLUMNS = ("first_name", "last_name", "title", "company", "email", "phone", "worksheet")


class Migration(migrations.Migration):
    dependencies = [("leads", "0008_lead_phone_idx")]

    operations = [
        *(
            migrations.RemoveIndex(model_name="lead", name=f"lead_{name}_lower_idx")
            for name in ("first_name", "company", "title")
        ),
        *(
            migrations.AddIndex(
                model_name="lead",
                index=models.Index(
                    django.db.models.functions.comparison.NullIf(
                        django.db.models.functions.text.Lower(name), models.Value("")
                    ),
                    models.F("id"),
                    name=f"lead_{name}_sort_idx",
                ),
            )
            for name in COLUMNS
        ),
    ]
