"""Importers work on leads: edit them (fields, status, owner, notes), bulk-change and delete them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

IMPORTER_EXTRA = [("leads", "change_lead"), ("leads", "delete_lead")]


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations; the group needs them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="importer")
    for app_label, codename in IMPORTER_EXTRA:
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name="importer").first()
    if group:
        for app_label, codename in IMPORTER_EXTRA:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [("leads", "0006_lead_status_owner_notes_views")]

    operations = [migrations.RunPython(grant, revoke)]
