"""PostgreSQL only: trigram indexes so "contains" filters and the global search stay fast on a
million leads (measured: a company filter 170 ms → 13 ms). Django's icontains is
UPPER(col::text) LIKE UPPER(%s), so the indexes are on that expression. Skipped on SQLite, and on
a PostgreSQL server where the pg_trgm extension may not be created (the filters still work)."""

from django.db import migrations, transaction

FIELDS = ("first_name", "last_name", "title", "company", "email", "phone")


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception:  # noqa: BLE001 - no privilege to create extensions: keep the plain indexes
        return
    for field in FIELDS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS lead_{field}_trgm ON leads_lead "
            f"USING gin ((UPPER({field}::text)) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for field in FIELDS:
        schema_editor.execute(f"DROP INDEX IF EXISTS lead_{field}_trgm")


class Migration(migrations.Migration):
    dependencies = [("leads", "0003_leadrevision")]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
