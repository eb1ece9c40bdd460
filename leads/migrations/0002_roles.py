"""The two roles: viewer (browse, filter, export, chat) and importer (viewer + imports)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEWER = [("leads", "view_lead"), ("processing", "view_importjob")]
IMPORTER = [*VIEWER, ("processing", "add_importjob"), ("processing", "change_importjob")]


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; these groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in (("viewer", VIEWER), ("importer", IMPORTER)):
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in wanted:
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["viewer", "importer"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0001_initial"),
        ("processing", "0003_schedule_stale_batch_sweeper"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, delete_roles)]
