"""Batches store SourceRow.to_json() instead of dicts with "_worksheet"/"_row"/"_seq" keys; the split's
queueing is tracked so the sweeper re-queues a lost split a bounded number of times; the LLM permits
moved to the llm app (they are leases, nothing to carry over); the sweeper task got its service's name."""

from django.db import migrations, models
from django.db.models import F

# The first version's row shape: the ordered-JSON encoding (order under "__keys__") of
# {header: value, ..., "_worksheet": sheet, "_row": n, "_seq": n}.
_OLD_ORDER_KEY = "__keys__"
_OLD_META = ("_worksheet", "_row", "_seq")


def _old_row_to_source_row(row):
    if not isinstance(row, dict) or "cells" in row and "seq" in row:
        return row
    order = row.get(_OLD_ORDER_KEY)
    keys = [key for key in order if key in row] if isinstance(order, list) else list(row)
    cells = [[key, row[key]] for key in dict.fromkeys(keys) if key not in _OLD_META and key != _OLD_ORDER_KEY]
    return {
        "worksheet": str(row.get("_worksheet", "")),
        "row": row.get("_row") or 0,
        "seq": row.get("_seq") or 0,
        "cells": cells,
    }


def rows_to_source_rows(apps, schema_editor):
    ImportBatch = apps.get_model("processing", "ImportBatch")
    for batch in ImportBatch.objects.only("id", "rows").iterator(chunk_size=500):
        rows = [_old_row_to_source_row(row) for row in batch.rows]
        if rows != batch.rows:
            ImportBatch.objects.filter(pk=batch.pk).update(rows=rows)


def split_queued_at_from_created_at(apps, schema_editor):
    ImportJob = apps.get_model("processing", "ImportJob")
    ImportJob.objects.filter(status="uploaded").update(split_queued_at=F("created_at"))


def rename_sweeper_task(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name="requeue-stale-batches").update(
        name="imports-sweep", func="processing.tasks.imports_sweep"
    )


def rename_sweeper_task_back(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name="imports-sweep").update(
        name="requeue-stale-batches", func="processing.tasks.requeue_stale_batches"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("processing", "0005_alter_importbatch_rows"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.DeleteModel(name="LlmSlot"),
        migrations.AddField(
            model_name="importjob",
            name="split_attempts",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="importjob",
            name="split_queued_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(split_queued_at_from_created_at, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="importbatch",
            name="rows",
            field=models.JSONField(default=list),
        ),
        migrations.RunPython(rows_to_source_rows, migrations.RunPython.noop),
        migrations.RunPython(rename_sweeper_task, rename_sweeper_task_back),
    ]
