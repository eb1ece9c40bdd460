from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("processing", "0008_importjob_column_roles"),
    ]

    operations = [
        migrations.AddField(
            model_name="importjob",
            name="model_column_roles",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
