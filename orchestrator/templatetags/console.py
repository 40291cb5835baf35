"""Template helpers for the console's pages: registry kinds of instances, and the examples per kind."""

from __future__ import annotations

from datetime import timedelta

from django import template
from django.utils import timezone

from orchestrator.models import PullJob
from registries.decode import RegistryUrlError, parse_registry_url
from registries.kinds import KINDS, RegistryKind, detect_kind
from registries.reference import ReferenceError, parse_normalized

register = template.Library()


@register.filter
def registry_kind(instance) -> RegistryKind:
    """The registry kind an instance pulls from: the host of its image name, else its registry URL's host."""
    try:
        return detect_kind(parse_normalized(instance.image_name).domain)
    except ReferenceError:
        pass
    try:
        url = parse_registry_url(instance.registry_url)
    except RegistryUrlError:
        url = None
    return detect_kind(url.host if url else "")


@register.simple_tag
def registry_kinds() -> tuple[RegistryKind, ...]:
    """Every registry kind, in the order the console detects them (the catch-all last)."""
    return KINDS


@register.filter
def kind_short_label(label: str) -> str:
    """A kind's label without its parenthesised detail, for badges: "Amazon ECR (private)" -> "Amazon ECR"."""
    return str(label).split(" (", 1)[0]


@register.filter
def has_active_pull(instances) -> bool:
    """True if any instance (annotated with ``latest_pull_state``) has a queued or running pull."""
    return any(getattr(instance, "latest_pull_state", None) in PullJob.ACTIVE_STATES for instance in instances)


@register.filter
def expires_within(moment, hours: int = 2) -> bool:
    """True if ``moment`` (a datetime) is less than ``hours`` hours away; an ECR password about to lapse."""
    return moment is not None and moment - timezone.now() < timedelta(hours=int(hours))
