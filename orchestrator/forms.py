"""The container instance form: Kura's orchestrator fields, validated per registry kind."""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import HTML, Div, Fieldset, Layout, Submit
from django import forms

from registries.validation import validate_registry_fields

from .models import ContainerInstance

PASSWORD_HELP_NEW = (
    "The registry password or access token: a Docker Hub personal access token, the output of "
    "`aws ecr get-login-password` for ECR, a GitHub token for ghcr.io. Stored encrypted; never shown again."
)
PASSWORD_HELP_KEEP = "A password is stored. Leave blank to keep it, type a new one to replace it."


class ContainerInstanceForm(forms.ModelForm):
    registry_password = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        max_length=8192,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=PASSWORD_HELP_NEW,
    )
    clear_password = forms.BooleanField(
        label="Remove the stored password",
        required=False,
        help_text="Tick to pull anonymously from now on.",
    )

    class Meta:
        model = ContainerInstance
        fields = [
            "name",
            "enabled",
            "image_name",
            "image_tag",
            "registry_url",
            "registry_username",
            "registry_password",
            "download_retries",
            "download_retry_interval",
            "download_timeout",
        ]
        widgets = {
            "image_name": forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
            "registry_url": forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
            "registry_username": forms.TextInput(attrs={"autocomplete": "username", "spellcheck": "false"}),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.password_stored = bool(self.instance.pk and self.instance.registry_password)
        self.registry_kind = None
        self.warnings: list[str] = []
        self.password_expiry = None
        if self.password_stored:
            self.fields["registry_password"].help_text = PASSWORD_HELP_KEEP
        else:
            del self.fields["clear_password"]
        self.fields["image_tag"].required = False
        self.helper = FormHelper()
        self.helper.form_id = "instance-form"
        self.helper.layout = Layout(
            Fieldset("Container", "name", "enabled"),
            Fieldset(
                "Image and registry",
                "image_name",
                "image_tag",
                "registry_url",
                "registry_username",
                "registry_password",
                *(["clear_password"] if self.password_stored else []),
                HTML('<div id="registry-kind-help" class="form-text mb-3" aria-live="polite"></div>'),
            ),
            Fieldset("Download", "download_retries", "download_retry_interval", "download_timeout"),
            Div(Submit("save", "Save"), css_class="mt-3"),
        )

    def clean(self):
        cleaned = super().clean()
        if any(name in self.errors for name in ("image_name", "registry_url", "registry_username")):
            return cleaned
        clearing = cleaned.get("clear_password", False)
        new_password = cleaned.get("registry_password") or ""
        keep_stored = self.password_stored and not new_password and not clearing
        result = validate_registry_fields(
            cleaned.get("image_name", ""),
            cleaned.get("image_tag") or "",
            cleaned.get("registry_url", ""),
            cleaned.get("registry_username", ""),
            new_password,
            password_is_stored=keep_stored,
        )
        for field, messages in result.errors.items():
            for message in messages:
                self.add_error(field if field in self.fields else None, message)
        self.registry_kind = result.kind
        self.warnings = list(result.warnings)
        self.password_expiry = result.password_expiry
        if not result.errors:
            for field in ("image_name", "image_tag", "registry_url"):
                if field in result.cleaned:
                    cleaned[field] = result.cleaned[field]
        if not cleaned.get("image_tag"):
            cleaned["image_tag"] = "latest"
        return cleaned

    def save(self, commit: bool = True) -> ContainerInstance:
        instance = super().save(commit=False)
        new_password = self.cleaned_data.get("registry_password") or ""
        if self.cleaned_data.get("clear_password"):
            instance.registry_password = ""
            instance.registry_password_expires_at = None
        elif new_password:
            instance.registry_password = new_password
            instance.registry_password_expires_at = self.password_expiry
        else:
            # Blank means keep: reload the stored secret, which the form never saw.
            instance.registry_password = (
                ContainerInstance.objects.get(pk=instance.pk).registry_password if instance.pk else ""
            )
        if commit:
            instance.save()
        return instance
