"""Authentication backend: Django's ModelBackend, reading a user's permissions in one query.

Every page and fragment checks permissions (the views' decorators, `perms` in templates), and Django's
ModelBackend reads a user's own permissions and their groups' with two queries per request. Under
issue 12's load (40 users, a status poll every 2 s each) that was a fifth of a status poll's cost;
one query with both gives the same set.
"""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import Q


class PermissionsInOneQueryBackend(ModelBackend):
    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None or user_obj.is_superuser:
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, "_perm_cache"):
            granted = Permission.objects.filter(Q(user=user_obj) | Q(group__user=user_obj))
            pairs = granted.values_list("content_type__app_label", "codename").order_by().distinct()
            user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in pairs}
        return user_obj._perm_cache
