"""The container part of the instance form: validation of Kura's container fields, collapsible sections, and
the confirmation asked before disabling an instance stops its container.

Mixed into ``forms.ContainerInstanceForm``; the parsing itself is in
:mod:`orchestrator.containers.spec`, whose ``CONTAINER_SECTIONS`` lists the fields.
"""

from __future__ import annotations

from crispy_forms.layout import Fieldset
from crispy_forms.utils import TEMPLATE_PACK
from django import forms
from django.conf import settings
from django.template.loader import render_to_string

from orchestrator.containers.parsers import DEFAULT_LOGGER, SettingError, parse_digest_pin
from orchestrator.containers.spec import CONTAINER_SECTIONS, SPEC_FIELDS, SpecErrors, build_spec, spec_values
from orchestrator.security import host_access
from orchestrator.security.roles import HOST_ACCESS

# The container fields the form edits: the spec's, and the required digest checked after the pull.
CONTAINER_FIELDS = ("digest_pin", *SPEC_FIELDS)
# Changing these on a container with host access needs the permission too.
PROTECTED_BY_HOST_ACCESS = (
    "image_name",
    "image_tag",
    "registry_url",
    "registry_username",
    "registry_password",
    "entrypoint",
    "env",
)
TEXTAREA_ROWS = {"env": 4, "entrypoint": 2, "volumes": 2, "devices": 2, "logger_parameters": 2}
PLACEHOLDERS = {
    "internal_ports": "80, 53:udp",
    "external_ports": "8080, 5353",
    "env": "LOG_LEVEL=info\nALLOWED_HOSTS=a.example,b.example",
    "entrypoint": "python3,app.py,--verbose",
    "memory": "256m",
    "cpus": "1.5",
    "gpus": "all",
    "volumes": "/srv/app/data:/data, /srv/app/config:/etc/app:ro",
    "devices": "/dev/ttyUSB0",
    "runtime": "nvidia",
    "network_mode": "bridge",
    "logger_parameters": "max-size=10m, max-file=3",
    "digest_pin": "sha256:\u2026",
}


class Section(Fieldset):
    """A fieldset that folds (Bootstrap 5 collapse). Open when asked, or when one of its fields has an error."""

    template = "instances/layout/section.html"

    def __init__(self, legend: str, *fields, start_open: bool = False, **kwargs) -> None:
        super().__init__(legend, *fields, **kwargs)
        self.start_open = start_open

    def render(self, form, context, template_pack=TEMPLATE_PACK, **kwargs):
        names = [pointer.name for pointer in self.get_field_names()]
        errors = [name for name in names if name in form.errors]
        configured = sum(1 for name in names if _is_set(form, name))
        fields = self.get_rendered_fields(form, context, template_pack, **kwargs)
        slug = "".join(ch if ch.isalnum() else "-" for ch in str(self.legend).lower())
        context.update(
            {
                "fieldset": self,
                "legend": self.legend,
                "fields": fields,
                "section_id": f"section-{slug}",
                "section_open": self.start_open or bool(errors),
                "section_errors": len(errors),
                "section_configured": configured,
            }
        )
        return render_to_string(self.template, context.flatten())


def _is_set(form, name: str) -> bool:
    """True when a field holds something other than its default (shown as a count on a folded section)."""
    if name not in form.fields:
        return False
    value = form[name].value()
    try:
        default = form._meta.model._meta.get_field(name).get_default()
    except Exception:  # a form-only field
        default = None
    if isinstance(form.fields[name], forms.BooleanField):
        return bool(value) != bool(default)
    return value not in (None, "") and str(value).strip() != str(default if default is not None else "")


class ContainerSettingsMixin:
    """Validation and widgets for the container fields; ``confirm_disable`` when an enabled instance is disabled."""

    ask_to_confirm_disable = True

    def __init__(self, *args, user=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Who submits: host access (privileged, devices, host paths...) depends on it; nobody means no one.
        self.user = user
        for name, rows in TEXTAREA_ROWS.items():
            if name in self.fields:
                self.fields[name].widget = forms.Textarea(attrs={"rows": rows})
        for name in CONTAINER_FIELDS:
            if name in self.fields:
                attrs = self.fields[name].widget.attrs
                attrs.setdefault("spellcheck", "false")
                attrs.setdefault("autocomplete", "off")
                if name in PLACEHOLDERS:
                    # "e.g." so an example is not mistaken for a value already set.
                    attrs.setdefault("placeholder", f"e.g. {PLACEHOLDERS[name]}")
        if "logger_type" in self.fields:
            # Kura's default when a client (or an older form) leaves it out.
            self.fields["logger_type"].required = False
        self.disabling = bool(
            self.ask_to_confirm_disable
            and self.instance.pk
            and self.instance.enabled
            and self.is_bound
            and "enabled" in self.fields
            and not self.fields["enabled"].widget.value_from_datadict(self.data, self.files, self.add_prefix("enabled"))
        )
        if self.disabling:
            self.fields["confirm_disable"] = forms.BooleanField(
                label="Yes, stop and remove the container",
                required=False,
                help_text=f"Disabling stops and removes the container {self.instance.name} on the gateway. The image "
                "stays, and enabling the instance again starts a new container.",
            )

    @staticmethod
    def container_sections() -> list[Section]:
        """The folded sections of the container fields, in the order of ``CONTAINER_SECTIONS``."""
        return [Section(legend, *names) for legend, names in CONTAINER_SECTIONS]

    def disable_confirmation_fields(self) -> list[str]:
        """For the layout: the confirmation checkbox, when this submission disables the instance."""
        return ["confirm_disable"] if self.disabling else []

    def clean_logger_type(self) -> str:
        return self.cleaned_data.get("logger_type") or DEFAULT_LOGGER

    def clean_digest_pin(self) -> str:
        try:
            return parse_digest_pin(self.cleaned_data.get("digest_pin", ""))
        except SettingError as error:
            raise forms.ValidationError(str(error)) from None

    def clean(self):
        cleaned = super().clean()
        for name in TEXTAREA_ROWS:
            if isinstance(cleaned.get(name), str):
                cleaned[name] = cleaned[name].replace("\r\n", "\n").replace("\r", "\n")
        if self.disabling and not cleaned.get("confirm_disable"):
            self.add_error(
                "confirm_disable",
                f"Disabling stops and removes the container {self.instance.name}. Tick the box to confirm, or tick "
                "Enabled again to keep it running.",
            )
        values = {name: cleaned.get(name) for name in CONTAINER_FIELDS}
        try:
            spec = build_spec(values, name=cleaned.get("name") or self.instance.name or "")
        except SpecErrors as errors:
            for name, messages in errors.errors.items():
                if name in self.fields and name not in self.errors:
                    for message in messages:
                        self.add_error(name, message)
            return cleaned
        self._check_host_access(spec, cleaned)
        return cleaned

    def _check_host_access(self, spec, cleaned: dict) -> None:
        """Host access is an administrator's decision, and stays inside the allowlists for everyone."""
        policy = host_access.Policy(
            allowed_paths=tuple(settings.CONSOLE_ALLOWED_HOST_PATHS),
            allowed_devices=tuple(settings.CONSOLE_ALLOWED_DEVICES),
            docker_root=settings.CONSOLE_DOCKER_DATA_ROOT,
        )
        for name, messages in host_access.refusals_outside_policy(spec, policy).items():
            for message in messages:
                self.add_error(name, message)
        if self.user is not None and self.user.has_perm(HOST_ACCESS):
            return
        old = self._stored_spec()
        for name, message in host_access.refusals_without_permission(spec, old).items():
            if name not in self.errors:
                self.add_error(name, message)
        if old is not None and host_access.uses(old):
            # Otherwise an operator swaps the image (or the command) of a container an administrator let in.
            for name in PROTECTED_BY_HOST_ACCESS:
                changed = bool(cleaned.get(name)) if name == "registry_password" else name in self.changed_data
                if changed and name in self.fields:
                    self.add_error(
                        name,
                        "This container has access to the gateway (set by an administrator): only an administrator "
                        "may change its image, registry, entrypoint or environment.",
                    )

    def _stored_spec(self):
        if self.instance.pk is None:
            return None
        try:
            return build_spec(spec_values(self.instance), name=self.instance.name)
        except SpecErrors:
            return None
