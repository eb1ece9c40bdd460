from django.db import migrations


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name="requeue-stale-batches",
        defaults={
            "func": "processing.tasks.requeue_stale_batches",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="requeue-stale-batches").delete()


class Migration(migrations.Migration):
    dependencies = [("processing", "0002_cache_table_and_llm_slots"), ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more")]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
