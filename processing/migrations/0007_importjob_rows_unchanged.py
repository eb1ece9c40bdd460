from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("processing", "0006_source_rows_split_recovery_llm_app"),
    ]

    operations = [
        migrations.AddField(
            model_name="importjob",
            name="rows_unchanged",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="importjob",
            name="rows_kept_edits",
            field=models.PositiveIntegerField(default=0),
        ),
    ]
