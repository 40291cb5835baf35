"""Who may do what: the permission names, the three roles, and one access check for pages and JSON.

viewer: sees instances and pull progress.
operator: also creates, edits, deletes and pulls instances.
admin: everything, the admin site and user management included.

Views name a permission from here and use :func:`requires` (pages) or
:func:`json_requires` (JSON endpoints, which answer 401/403 instead of
redirecting to the login page); nothing else spells a permission string.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.apps import apps
from django.contrib.auth.decorators import login_required, permission_required

from registries.views import json_error, unauthenticated

VIEW_INSTANCE = "orchestrator.view_containerinstance"
ADD_INSTANCE = "orchestrator.add_containerinstance"
CHANGE_INSTANCE = "orchestrator.change_containerinstance"
DELETE_INSTANCE = "orchestrator.delete_containerinstance"
PULL_INSTANCE = "orchestrator.pull_containerinstance"
VIEW_PULL = "orchestrator.view_pulljob"
ADD_GATEWAY = "orchestrator.add_gateway"
# Privileged mode, devices, host paths, the host's network, runtimes, log drivers that send elsewhere.
HOST_ACCESS = "orchestrator.host_access"
# The audit log page (/audit/) and its read-only admin.
VIEW_AUDIT = "orchestrator.view_auditentry"

_VIEWER = [VIEW_INSTANCE, VIEW_PULL]
_OPERATOR = [*_VIEWER, ADD_INSTANCE, CHANGE_INSTANCE, DELETE_INSTANCE, PULL_INSTANCE]
_ADMIN = [
    *_OPERATOR,
    HOST_ACCESS,
    VIEW_AUDIT,
    ADD_GATEWAY,
    "orchestrator.delete_gateway",
    "auth.view_user",
    "auth.add_user",
    "auth.change_user",
    "auth.delete_user",
    "auth.view_group",
]
ROLE_PERMISSIONS: dict[str, list[str]] = {"viewer": _VIEWER, "operator": _OPERATOR, "admin": _ADMIN}


def requires(permission: str) -> Callable:
    """A page for signed-in users holding ``permission``: the login page otherwise, 403 without it."""

    def decorate(view: Callable) -> Callable:
        return login_required(permission_required(permission, raise_exception=True)(view))

    return decorate


def json_requires(*permissions: str, message: str = "You may not do this.") -> Callable:
    """A JSON endpoint for signed-in users holding any of ``permissions``: 401 or 403 in the JSON error shape."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def guarded(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return unauthenticated()
            if not any(request.user.has_perm(permission) for permission in permissions):
                return json_error(403, "forbidden", message)
            return view(request, *args, **kwargs)

        return guarded

    return decorate


def ensure_roles(group_model=None, permission_model=None) -> None:
    """Create or update the role groups. Idempotent; runs after every migrate (and test flush).

    Runs from post_migrate after Django has created the permissions of the
    apps listed before ``orchestrator`` in INSTALLED_APPS and of this one. The
    data migration passes its historical models.
    """
    group_model = group_model or apps.get_model("auth", "Group")
    permission_model = permission_model or apps.get_model("auth", "Permission")
    for role, codes in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        permissions = []
        for code in codes:
            app_label, codename = code.split(".")
            permissions.extend(permission_model.objects.filter(content_type__app_label=app_label, codename=codename))
        group.permissions.set(permissions)
