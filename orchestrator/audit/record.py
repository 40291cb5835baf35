"""Writing the audit log: :func:`record` is the one function every action calls.

Instances, pulls and containers call :func:`record` where the action happens.
Logins, logouts, failed logins and role or permission changes come through the
signal receivers at the bottom (connected by :func:`connect_receivers` from the
app's ``ready``), because Django's auth and admin make them.

No secret value ever reaches the table: :func:`diff` writes a secret field
(any :class:`~orchestrator.security.encryption.EncryptedTextField`, found by its
type) as ``"changed"``, :func:`record` turns any decrypted ``Secret`` it is given
into ``"changed"`` too, and a failed login keeps the user name tried, never the
password.

The request of the moment is kept in a context variable by
:class:`orchestrator.audit.middleware.AuditRequestMiddleware`, so the signal
receivers know who and from where even when Django does not pass the request
(the admin's group and permission edits).
"""

from __future__ import annotations

import getpass
import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from axes.helpers import get_client_ip_address
from django.contrib.auth import get_user_model, user_logged_in, user_logged_out, user_login_failed
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_save, pre_save

from orchestrator.models import AuditEntry
from orchestrator.models.audit import CHANGED
from orchestrator.security.encryption import EncryptedTextField, Secret

from .prune import schedule_prune

Action = AuditEntry.Action


@dataclass
class _Context:
    request: object | None = None
    #: True inside :func:`quiet`: the receivers leave role and permission changes to an explicit record().
    quiet: bool = False
    #: Role and permission entries of this request by target, so one admin save makes one entry per target.
    pending: dict = field(default_factory=dict)


_current: ContextVar[_Context | None] = ContextVar("audit_context", default=None)


@contextmanager
def during(request) -> Iterator[None]:
    """Make ``request`` the one the receivers (and ``record(None, ...)``) see; the middleware wraps each request."""
    token = _current.set(_Context(request=request))
    try:
        yield
    finally:
        _current.reset(token)


@contextmanager
def quiet() -> Iterator[None]:
    """Role and permission changes made inside are not recorded by the receivers: the caller records them itself."""
    outer = _current.get()
    token = _current.set(_Context(request=outer.request if outer else None, quiet=True))
    try:
        yield
    finally:
        _current.reset(token)


def runner() -> str:
    """Who runs this process (``manage.py``, a shell): the login name from the environment or the OS."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry, as in some containers
        return "unknown"


def client_address(request) -> str | None:
    """The client's address by the rule django-axes uses (its own helper), so one rule decides it."""
    if request is None or not hasattr(request, "META"):
        return None
    try:
        value = get_client_ip_address(request)
    except Exception:  # noqa: BLE001 - a bad header must not stop the action
        return None
    try:
        return str(ipaddress.ip_address(str(value).strip())) if value else None
    except ValueError:
        return None


def record(
    request,
    action: str,
    *,
    instance=None,
    changes: dict | None = None,
    message: str = "",
    user=None,
    username: str | None = None,
) -> AuditEntry:
    """Write one entry: ``action`` (an ``AuditEntry.Action``) by the request's user, from its address.

    ``request`` may be None (a command, a task): then the request of the moment, if any, is used.
    ``user`` and ``username`` override who acted (a login, a failed login's name, ``manage.py``'s
    runner). ``instance`` may be already deleted: its name is kept. ``changes`` is
    {field: [old, new]} as :func:`diff` makes it; any decrypted secret in it becomes "changed".
    """
    if action not in Action.values:
        raise ValueError(f"{action!r} is not an audit action; add it to AuditEntry.Action")
    if request is None:
        context = _current.get()
        request = context.request if context else None
    if user is None and request is not None:
        candidate = getattr(request, "user", None)
        if candidate is not None and candidate.is_authenticated:
            user = candidate
    if user is not None and not getattr(user, "pk", None):
        user = None
    if username is None:
        username = user.get_username() if user is not None else ""
    entry = AuditEntry.objects.create(
        user=user,
        username=username[:150],
        address=client_address(request),
        action=str(action),
        instance=instance if instance is not None and instance.pk else None,
        instance_name=instance.name if instance is not None else "",
        changes=_masked(changes or {}),
        message=message,
    )
    schedule_prune()
    return entry


def _masked(changes: dict) -> dict:
    """Last line of defence: a value that is a decrypted secret is never written, whatever the caller passed."""
    safe = {}
    for name, value in changes.items():
        values = value if isinstance(value, list | tuple) else [value]
        if value == CHANGED or any(isinstance(item, Secret) for item in values):
            safe[name] = CHANGED
        else:
            safe[name] = list(value) if isinstance(value, tuple) else value
    return safe


# --------------------------------------------------------------------------- diffs


def secret_fields(model) -> set[str]:
    """The model's secret columns, by their type: every EncryptedTextField, today's and future ones."""
    return {f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)}


def snapshot(instance):
    """The row as stored now (call it before saving), or a blank instance of the model for a new one."""
    model = type(instance)
    if instance.pk is not None:
        stored = model._default_manager.filter(pk=instance.pk).first()
        if stored is not None:
            return stored
    return model()


def diff(form, before=None) -> dict:
    """A saved ModelForm's changes, field by field: {field: [old, new]}, a secret field as "changed".

    The fields are the form's ``changed_data`` that are model fields, and the secret fields (the form
    keeps a stored secret when its box is left blank, so ``changed_data`` cannot tell). With
    ``before`` (the :func:`snapshot` taken before the save), old values are the stored ones and any
    other column the save changed (one the form's cleaning set, such as ``pull_platform`` or
    ``credentials_host``) is included; without it, old values are the form's initial ones. Call it
    after ``form.save()``. Fields whose value did not change are left out.
    """
    instance = form.instance
    opts = instance._meta
    secrets = secret_fields(type(instance))
    names = {name for name in form.changed_data if _is_column(opts, name)} | secrets
    if before is not None:
        names |= {f.name for f in opts.concrete_fields if _is_column(opts, f.name)}
    changes = {}
    for model_field in opts.concrete_fields:
        name = model_field.name
        if name not in names:
            continue
        new = model_field.value_from_object(instance)
        old = model_field.value_from_object(before) if before is not None else form.initial.get(name)
        if name in secrets:
            if str(old or "") != str(new or ""):
                changes[name] = CHANGED
        elif old != new:
            changes[name] = [old, new]
    return changes


def _is_column(opts, name: str) -> bool:
    """A column a save can change: not the primary key, not an automatic timestamp, not a relation list."""
    try:
        model_field = opts.get_field(name)
    except Exception:  # noqa: BLE001 - FieldDoesNotExist: a form-only field (clear_password, pull_anyway)
        return False
    if not getattr(model_field, "concrete", False) or model_field.many_to_many or model_field.primary_key:
        return False
    return not (getattr(model_field, "auto_now", False) or getattr(model_field, "auto_now_add", False))


# --------------------------------------------------------------------------- receivers


def _on_login(sender, request, user, **kwargs) -> None:
    record(request, Action.LOGIN, user=user)


def _on_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        record(request, Action.LOGOUT, user=user)


def _on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Django has already masked the password in ``credentials``; only the user name is read.
    name_field = get_user_model().USERNAME_FIELD
    tried = str(credentials.get(name_field) or credentials.get("username") or "")
    locked = request is not None and getattr(request, "axes_locked_out", False)
    record(request, Action.LOGIN_FAILED, user=None, username=tried, message="locked out" if locked else "")


_FLAGS = ("is_superuser", "is_staff")


def _user_before_save(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    if raw or instance.pk is None:
        return
    if update_fields is not None and not set(update_fields) & set(_FLAGS):
        return  # last_login on every sign-in: no extra query
    stored = sender._default_manager.filter(pk=instance.pk).values(*_FLAGS).first()
    instance.__dict__["_audit_flags"] = stored


def _user_saved(sender, instance, created, raw=False, **kwargs) -> None:
    if raw:
        return
    before = {flag: False for flag in _FLAGS} if created else instance.__dict__.pop("_audit_flags", None)
    if before is None:
        return
    changes = {
        flag: [before[flag], getattr(instance, flag)] for flag in _FLAGS if before[flag] != getattr(instance, flag)
    }
    if changes:
        _role_change(Action.ROLE_CHANGE, instance, changes)


def _relations() -> dict:
    """through model -> (action, the owner's field, the owner's model)."""
    user_model = get_user_model()
    return {
        user_model.groups.through: (Action.ROLE_CHANGE, "groups", user_model),
        user_model.user_permissions.through: (Action.PERMISSION_CHANGE, "user_permissions", user_model),
        Group.permissions.through: (Action.PERMISSION_CHANGE, "permissions", Group),
    }


def _names(owner, field_name: str) -> list[str]:
    related = getattr(owner, field_name)
    if field_name == "groups":
        return sorted(related.values_list("name", flat=True))
    return sorted(f"{app}.{code}" for app, code in related.values_list("content_type__app_label", "codename"))


def _on_m2m(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    spec = _relations().get(sender)
    context = _current.get()
    if spec is None or (context is not None and context.quiet):
        return
    audit_action, field_name, owner_model = spec
    stash = instance.__dict__.setdefault("_audit_m2m", {})
    step, _, kind = action.partition("_")
    if step == "pre":
        if not reverse:
            owners = [instance]
        elif pk_set is None:  # clear() from the other side: everyone related now
            owners = list(owner_model._default_manager.filter(**{field_name: instance}))
        else:
            owners = list(owner_model._default_manager.filter(pk__in=pk_set))
        stash[(sender, kind)] = [(owner, _names(owner, field_name)) for owner in owners]
        return
    for owner, old in stash.pop((sender, kind), []):
        new = _names(owner, field_name)
        if old != new:
            _role_change(audit_action, owner, {field_name: [old, new]})


def _role_change(action: str, target, changes: dict) -> None:
    """One entry per target and request: the admin's save removes then adds, and saves the flags apart."""
    context = _current.get()
    if context is not None and context.quiet:
        return
    key = (str(action), target._meta.label_lower, target.pk)
    entry = context.pending.get(key) if context is not None else None
    if entry is not None:
        merged = dict(entry.changes)
        for name, (old, new) in changes.items():
            first = merged[name][0] if name in merged else old
            if first == new:
                merged.pop(name, None)
            else:
                merged[name] = [first, new]
        if merged:
            entry.changes = merged
            entry.save(update_fields=["changes"])
        else:
            entry.delete()
            del context.pending[key]
        return
    kind = "group" if isinstance(target, Group) else "user"
    label = target.name if isinstance(target, Group) else target.get_username()
    request = context.request if context is not None else None
    if request is None:
        entry = record(None, action, changes=changes, username=runner(), message=f"{kind} {label} (outside the web)")
    else:
        entry = record(request, action, changes=changes, message=f"{kind} {label}")
    if context is not None:
        context.pending[key] = entry


def connect_receivers() -> None:
    """Called once from the app's ``ready``."""
    user_model = get_user_model()
    user_logged_in.connect(_on_login, dispatch_uid="orchestrator.audit.login")
    user_logged_out.connect(_on_logout, dispatch_uid="orchestrator.audit.logout")
    user_login_failed.connect(_on_login_failed, dispatch_uid="orchestrator.audit.login_failed")
    pre_save.connect(_user_before_save, sender=user_model, dispatch_uid="orchestrator.audit.user_pre_save")
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="orchestrator.audit.user_post_save")
    for through in _relations():
        m2m_changed.connect(_on_m2m, sender=through, dispatch_uid=f"orchestrator.audit.m2m.{through._meta.label}")
