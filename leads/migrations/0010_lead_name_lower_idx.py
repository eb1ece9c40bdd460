"""Rows without an email find their lead by first + last name + company (leads.services, issue 13): one
index on all three lower-cased, instead of LOWER(last_name) alone, so the lookup reads only the leads
it matches — with the last name alone every lead with a common last name was read, for every chunk."""

import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("leads", "0009_text_sort_indexes")]

    operations = [
        migrations.RemoveIndex(model_name="lead", name="lead_last_name_lower_idx"),
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(
                django.db.models.functions.text.Lower("last_name"),
                django.db.models.functions.text.Lower("first_name"),
                django.db.models.functions.text.Lower("company"),
                name="lead_name_lower_idx",
            ),
        ),
    ]
