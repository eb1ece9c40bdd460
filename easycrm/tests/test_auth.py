"""easycrm.auth.PermissionsInOneQueryBackend: the same permissions as Django's ModelBackend, in one query."""

from __future__ import annotations

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission

from easycrm.auth import PermissionsInOneQueryBackend

pytestmark = pytest.mark.django_db


def _fresh(user):
    """The user as a new request loads it: no permission cache yet."""
    return type(user).objects.get(pk=user.pk)


@pytest.mark.parametrize("group", ["viewer", "importer", None])
def test_a_users_own_and_group_permissions_are_those_of_the_model_backend(
    django_user_model, group, django_assert_num_queries
):
    user = django_user_model.objects.create_user(f"u-{group}")
    if group:
        user.groups.add(Group.objects.get(name=group))
    user.user_permissions.add(Permission.objects.get(codename="delete_lead"))
    expected = ModelBackend().get_all_permissions(_fresh(user))

    fresh = _fresh(user)
    with django_assert_num_queries(1):
        granted = PermissionsInOneQueryBackend().get_all_permissions(fresh)
        assert fresh.has_perm("leads.delete_lead")  # answered from the same read
    assert granted == expected
    assert "leads.delete_lead" in granted


def test_inactive_and_superusers_are_answered_as_by_the_model_backend(django_user_model):
    inactive = django_user_model.objects.create_user("gone", is_active=False)
    inactive.groups.add(Group.objects.get(name="importer"))
    boss = django_user_model.objects.create_superuser("boss")
    backend = PermissionsInOneQueryBackend()

    assert backend.get_all_permissions(_fresh(inactive)) == set()
    assert backend.get_all_permissions(_fresh(boss)) == ModelBackend().get_all_permissions(_fresh(boss))


def test_a_group_taken_away_is_seen_by_the_next_request(django_user_model):
    user = django_user_model.objects.create_user("moved")
    importer = Group.objects.get(name="importer")
    user.groups.add(importer)
    backend = PermissionsInOneQueryBackend()
    assert "processing.add_importjob" in backend.get_all_permissions(_fresh(user))

    user.groups.remove(importer)

    assert backend.get_all_permissions(_fresh(user)) == set()
