"""The three roles of the console, as Django groups with permissions.

viewer: sees instances and pull progress.
operator: also creates, edits, deletes and pulls instances.
admin: everything, the admin site and user management included.
"""

from __future__ import annotations

_VIEWER = ["orchestrator.view_containerinstance", "orchestrator.view_pulljob"]
_OPERATOR = [
    *_VIEWER,
    "orchestrator.add_containerinstance",
    "orchestrator.change_containerinstance",
    "orchestrator.delete_containerinstance",
    "orchestrator.pull_containerinstance",
]
_ADMIN = [*_OPERATOR, "auth.view_user", "auth.add_user", "auth.change_user", "auth.delete_user", "auth.view_group"]
ROLE_PERMISSIONS: dict[str, list[str]] = {"viewer": _VIEWER, "operator": _OPERATOR, "admin": _ADMIN}


def ensure_roles(Group=None, Permission=None) -> None:  # noqa: N803 - model classes
    """Create or update the role groups. Idempotent; runs after every migrate (and test flush).

    Runs from post_migrate after Django has created the permissions of the
    apps listed before ``orchestrator`` in INSTALLED_APPS and of this one. The
    data migration passes its historical models.
    """
    if Group is None or Permission is None:
        from django.contrib.auth.models import Group, Permission

    for role, codes in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        permissions = []
        for code in codes:
            app_label, codename = code.split(".")
            permissions.extend(Permission.objects.filter(content_type__app_label=app_label, codename=codename))
        group.permissions.set(permissions)
