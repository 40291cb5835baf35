"""The instance document: what an agent knows of an instance, for its container and its reports. No secrets.

One function for every endpoint that names an instance (a job, the instance list, one instance, a control
request), so they all say the same. The rows are read with :data:`DOCUMENT_FIELDS` only: the stored password
and AWS secret are never loaded, let alone decrypted, to answer these.
"""

from __future__ import annotations

from typing import Any

from orchestrator.containers.spec import SPEC_FIELDS, SpecErrors, build_spec, spec_values
from orchestrator.models import ContainerInstance

# What a document reads of the row (pull_reference needs the image name and tag).
DOCUMENT_FIELDS = ("id", "gateway_id", "name", "enabled", "image_name", "image_tag", "digest_pin", *SPEC_FIELDS)


def instances_of(gateway):
    """The gateway's instances, read for documents."""
    return ContainerInstance.objects.filter(gateway=gateway).only(*DOCUMENT_FIELDS)


def _json_safe(value: Any) -> Any:
    # The spec fields are text and booleans today; anything else (a later field) goes as its text.
    return value if value is None or isinstance(value, str | bool | int | float) else str(value)


def settings_hash(instance: ContainerInstance, reference: str) -> str | None:
    """The label a container of ``instance`` running ``reference`` carries (:mod:`..containers.lifecycle`);
    None while the settings have errors (no such container can be made)."""
    try:
        return build_spec(spec_values(instance), name=instance.name).settings_hash(reference)
    except SpecErrors:
        return None


def instance_document(instance: ContainerInstance) -> dict:
    values = spec_values(instance)
    reference = instance.pull_reference
    try:
        spec_hash, errors = build_spec(values, name=instance.name).settings_hash(reference), None
    except SpecErrors as error:
        # The agent reports the container as not made, with these words (lifecycle.ensure_running's).
        spec_hash, errors = None, error.errors
    return {
        "id": instance.pk,
        "name": instance.name,
        "enabled": instance.enabled,
        "reference": reference,
        # The container phase refuses an image with another digest (lifecycle.ensure_running).
        "digest_pin": instance.digest_pin,
        "spec": {name: _json_safe(value) for name, value in values.items()},
        "settings_hash": spec_hash,
        "spec_errors": errors,
    }
