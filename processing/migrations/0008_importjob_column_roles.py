from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("processing", "0007_importjob_rows_unchanged"),
    ]

    operations = [
        migrations.AddField(
            model_name="importjob",
            name="column_roles",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
