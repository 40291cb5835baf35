"""The container instance form: Kura's orchestrator fields, validated per registry kind."""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import HTML, Div, Fieldset, Layout, Submit
from django import forms
from django.conf import settings
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables

from orchestrator.models import ContainerInstance, Gateway, PullJob
from orchestrator.models.instances import normalized_reference
from orchestrator.pulls.credentials import Login
from orchestrator.security.encryption import Secret
from registries.check import CheckResult, unsupported_message
from registries.credentials import login_host
from registries.ecr import describe_expiry
from registries.validation import validate_registry_fields

from .access import Check, check_access, refusal_field
from .sections import CONTAINER_FIELDS, ContainerSettingsMixin, Section

PASSWORD_HELP_NEW = (
    "The registry password or access token: a Docker Hub personal access token, the output of "
    "`aws ecr get-login-password` for ECR, a GitHub token for ghcr.io. Stored encrypted; never shown again."
)
REGISTRY_FIELDS = ("image_name", "image_tag", "registry_url", "registry_username", "registry_password")
# The "Image and registry" section, in the order the console's form and the admin show it.
IMAGE_FIELDS = ("image_name", "image_tag", "pull_anyway", "registry_url", "registry_username", "registry_password")
AWS_FIELDS = ("aws_auth", "aws_access_key_id", "aws_secret_access_key")
DOWNLOAD_FIELDS = ("download_retries", "download_retry_interval", "download_timeout")
PASSWORD_HELP_KEEP = "A password is stored. Leave blank to keep it, type a new one to replace it."


class ContainerInstanceForm(ContainerSettingsMixin, forms.ModelForm):
    registry_password = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        max_length=8192,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=PASSWORD_HELP_NEW,
    )
    pull_anyway = forms.BooleanField(
        label="Pull anyway",
        required=False,
        help_text="Pull an image built for another platform than the gateway's (only if the gateway emulates it).",
    )
    aws_secret_access_key = forms.CharField(
        label="AWS secret access key",
        required=False,
        strip=True,
        max_length=256,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="The secret that goes with the access key ID. Stored encrypted; never shown again.",
    )
    clear_password = forms.BooleanField(
        label="Remove the stored password",
        required=False,
        help_text="Tick to pull anonymously from now on.",
    )

    class Meta:
        model = ContainerInstance
        fields = [
            "gateway",
            "name",
            "enabled",
            *REGISTRY_FIELDS,
            "aws_auth",
            "aws_access_key_id",
            *DOWNLOAD_FIELDS,
            *CONTAINER_FIELDS,
        ]
        widgets = {
            "image_name": forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
            "registry_url": forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
            "registry_username": forms.TextInput(attrs={"autocomplete": "username", "spellcheck": "false"}),
        }

    def __init__(self, *args, always_check: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The Check access button checks whatever CHECK_IMAGE_ON_SAVE says; a save checks only when it says so.
        self.always_check = always_check
        # The stored secrets, read with the instance: cleaning the model form overwrites its password field.
        # Kept as Secret (masked repr) until the auth config is built.
        self.stored_password = (self.instance.registry_password or Secret("")) if self.instance.pk else Secret("")
        self.stored_secret = (self.instance.aws_secret_access_key or Secret("")) if self.instance.pk else Secret("")
        self.login_host = ""
        self.password_stored = bool(self.stored_password)
        self.aws_secret_stored = bool(self.stored_secret)
        if self.aws_secret_stored:
            self.fields["aws_secret_access_key"].help_text = "A secret is stored. Leave blank to keep it."
        if "aws_auth" in self.fields:  # the admin builds the form from its own fieldsets
            self.fields["aws_auth"].widget = forms.RadioSelect(choices=ContainerInstance.AwsAuth.choices)
        self.registry_kind = None
        self.warnings: list[str] = []
        self.password_expiry = None
        self.check_result: CheckResult | None = None
        #: The check with its request (None when no check ran): the save links a pending one to the instance.
        self.check: Check | None = None
        if self.password_stored:
            self.fields["registry_password"].help_text = PASSWORD_HELP_KEEP
        else:
            del self.fields["clear_password"]
        self.fields["image_tag"].required = False
        if "gateway" in self.fields:
            # Left out (a script, an older form): the instance's own gateway, or the only one there is.
            self.fields["gateway"].required = False
            self.fields["gateway"].empty_label = None
        self.helper = FormHelper()
        self.helper.form_id = "instance-form"
        self.helper.attrs = {"data-check-url": reverse("registry-check"), "data-instance": self.instance.pk or ""}
        self.helper.layout = Layout(
            Fieldset("Container", "gateway", "name", "enabled", *self.disable_confirmation_fields()),
            Section(
                "Image and registry",
                *IMAGE_FIELDS,
                *(["clear_password"] if self.password_stored else []),
                Div(
                    HTML('<p class="fw-semibold mb-1">AWS ECR only: where the password comes from</p>'),
                    "aws_auth",
                    "aws_access_key_id",
                    "aws_secret_access_key",
                    css_id="aws-fields",
                    css_class="border rounded p-3 mb-3",
                ),
                HTML('<div id="registry-kind-help" class="form-text mb-3" aria-live="polite"></div>'),
                HTML(
                    '<div class="mb-3">'
                    '<button type="button" class="btn btn-outline-secondary btn-sm" id="check-access">'
                    'Check access</button> <span class="form-text">Asks the registry, through the gateway\'s Docker '
                    "daemon, for the image's digest and platforms; nothing is downloaded.</span>"
                    '<div id="check-result" class="mt-2" aria-live="polite"></div></div>'
                ),
                "digest_pin",
                start_open=True,
            ),
            Section("Download", *DOWNLOAD_FIELDS),
            *self.container_sections(),
            Div(Submit("save", "Save"), css_class="mt-3"),
        )

    def clean_gateway(self):
        gateway = self.cleaned_data.get("gateway")
        if gateway is None and self.instance.gateway_id:
            gateway = self.instance.gateway
        if gateway is None:
            only = list(Gateway.objects.all()[:2])
            if len(only) != 1:
                raise forms.ValidationError("Choose the gateway the container runs on.")
            gateway = only[0]
        moving = self.instance.pk and self.instance.gateway_id and gateway.pk != self.instance.gateway_id
        if moving and self.instance.pulls.filter(state=PullJob.State.RUNNING).exists():
            # Its agent would go on and run the container on the old gateway.
            raise forms.ValidationError(
                f"A pull of this instance is running on {self.instance.gateway.name}: cancel it, or wait for it "
                "to end, before moving the instance."
            )
        return gateway

    def clean(self):
        cleaned = super().clean()
        if any(name in self.errors for name in ("image_name", "registry_url", "registry_username")):
            return cleaned
        aws_auth = cleaned.get("aws_auth", "")
        clearing = cleaned.get("clear_password", False) or bool(aws_auth)
        new_password = "" if aws_auth else cleaned.get("registry_password") or ""
        keep_stored = self.password_stored and not new_password and not clearing
        result = validate_registry_fields(
            cleaned.get("image_name", ""),
            cleaned.get("image_tag") or "",
            cleaned.get("registry_url", ""),
            # With a generated password, the user name is always AWS and there is nothing to paste.
            "" if aws_auth else cleaned.get("registry_username", ""),
            new_password,
            password_is_stored=keep_stored,
        )
        for field, messages in result.errors.items():
            for message in messages:
                self.add_error(field if field in self.fields else None, message)
        self._forget_url_credentials()
        self.registry_kind = result.kind
        self.warnings = [] if aws_auth else list(result.warnings)
        self.password_expiry = result.password_expiry
        if self.password_expiry is not None:
            self.warnings.append(f"The ECR password {describe_expiry(self.password_expiry)}.")
        if not result.errors:
            for field in ("image_name", "image_tag", "registry_url", "registry_username"):
                if field in result.cleaned:
                    cleaned[field] = result.cleaned[field]
            self.login_host = login_host(cleaned.get("image_name", ""), cleaned.get("registry_url", ""))
            self._keep_secrets_at_home(cleaned, keep_stored, aws_auth)
        if aws_auth:
            self._clean_aws(cleaned, aws_auth, result.kind)
        if not cleaned.get("image_tag"):
            cleaned["image_tag"] = "latest"
        wanted = self.always_check or settings.CHECK_IMAGE_ON_SAVE
        if wanted and not any(field in self.errors for field in (*REGISTRY_FIELDS, *AWS_FIELDS)):
            self._check_access(cleaned, new_password, keep_stored, clearing)
        return cleaned

    def _keep_secrets_at_home(self, cleaned: dict, keep_stored: bool, aws_auth: str) -> None:
        """A stored secret stays with the login host it was entered for: a new host needs it typed again.

        Otherwise an edit of the image name or registry URL (and a blank password, "keep the stored one")
        would hand the stored password to a server of the editor's choosing.
        """
        home = self.instance.credentials_host
        if home == self.login_host:
            return
        home = home or "another registry"
        if keep_stored:
            self.add_error(
                "registry_password", f"Enter the password for {self.login_host}: the stored one is for {home}."
            )
        if self._keeps_stored_secret(cleaned):
            self.add_error(
                "aws_secret_access_key",
                f"Enter the secret access key for {self.login_host}: the stored one is for {home}.",
            )

    def _forget_url_credentials(self) -> None:
        """A registry URL typed with user:password@ is shown back without them: they are a secret."""
        url = self.data.get(self.add_prefix("registry_url"), "")
        if "@" in url:
            scheme, sep, rest = url.rpartition("://")
            self.data = self.data.copy()
            self.data[self.add_prefix("registry_url")] = f"{scheme}{sep}{rest.rsplit('@', 1)[1]}"

    def _clean_aws(self, cleaned: dict, aws_auth: str, kind) -> None:
        if kind is None or kind.slug not in ("ecr", "ecr-public"):
            label = kind.label if kind else "this registry"
            self.add_error("aws_auth", f"A generated password works only for AWS ECR; this image is on {label}.")
            return
        cleaned["registry_username"] = "AWS"
        cleaned["registry_password"] = ""
        if aws_auth == ContainerInstance.AwsAuth.KEYS:
            if not cleaned.get("aws_access_key_id"):
                self.add_error("aws_access_key_id", "Enter the access key ID (it starts with AKIA or ASIA).")
            if not cleaned.get("aws_secret_access_key") and not self.aws_secret_stored:
                self.add_error("aws_secret_access_key", "Enter the secret access key that goes with the key ID.")

    def _keeps_stored_secret(self, cleaned: dict) -> bool:
        """Access keys with the secret left blank: the stored AWS secret is used."""
        with_keys = cleaned.get("aws_auth") == ContainerInstance.AwsAuth.KEYS
        return with_keys and self.aws_secret_stored and not cleaned.get("aws_secret_access_key")

    @method_decorator(sensitive_variables("new_password", "login", "typed_secret"))
    def _check_access(self, cleaned: dict, new_password: str, keep_stored: bool, clearing: bool) -> None:
        """Ask the registry, through the daemon, whether this image can be pulled; before anything is saved."""
        with_keys = cleaned.get("aws_auth") == ContainerInstance.AwsAuth.KEYS
        typed_secret = cleaned.get("aws_secret_access_key") or ""
        uses_stored_secret = self._keeps_stored_secret(cleaned)
        login = Login(
            registry_url=cleaned.get("registry_url", ""),
            username=cleaned.get("registry_username", ""),
            password=self.stored_password if keep_stored else ("" if clearing else new_password),
            aws_auth=cleaned.get("aws_auth", ""),
            access_key_id=cleaned.get("aws_access_key_id", ""),
            secret_access_key=(typed_secret or self.stored_secret) if with_keys else "",
            stored_for=self.instance.credentials_host if (keep_stored or uses_stored_secret) else None,
        )
        gateway = cleaned.get("gateway")
        if gateway is None:
            return
        self.check = check_access(
            normalized_reference(cleaned["image_name"], cleaned["image_tag"]),
            login,
            gateway,
            user=self.user,
            instance=self.instance,
        )
        result = self.check_result = self.check.result
        if result is None:
            # No answer within a few seconds: the pull finds out anyway, and the instance page shows the answer.
            self.warnings.append(f"The image is not checked yet: {self.check.note}")
            return
        if result.error:
            field = refusal_field(result.error)
            if field is None:
                # AWS, the registry or the daemon may be back by the time the pull runs; say so, don't block.
                code, message = result.error["code"], result.error["message"]
                self.warnings.append(f"The image could not be checked before saving ({code}): {message}")
            else:
                self.add_error(field, result.error["message"])
            return
        cleaned["pull_platform"] = ""
        if result.supported is False:
            if cleaned.get("pull_anyway"):
                cleaned["pull_platform"] = result.platforms[0]
                self.warnings.append(f"Pulling {result.platforms[0]} on a {result.gateway_platform} gateway, as asked.")
            else:
                self.add_error("image_tag", unsupported_message(result))

    @method_decorator(sensitive_variables("new_password", "new_secret"))
    def save(self, commit: bool = True) -> ContainerInstance:
        instance = super().save(commit=False)
        instance.pull_platform = self.cleaned_data.get("pull_platform", instance.pull_platform or "")
        new_password = self.cleaned_data.get("registry_password") or ""
        new_secret = self.cleaned_data.get("aws_secret_access_key") or ""
        if instance.aws_auth != ContainerInstance.AwsAuth.KEYS:
            instance.aws_access_key_id = ""
            instance.aws_secret_access_key = ""
        else:
            instance.aws_secret_access_key = new_secret or self.stored_secret
        if self.cleaned_data.get("clear_password") or instance.aws_auth:
            instance.registry_password = ""
            instance.registry_password_expires_at = None
        elif new_password:
            instance.registry_password = new_password
            instance.registry_password_expires_at = self.password_expiry
        else:
            # Blank means keep: reload the stored secret, which the form never saw.
            instance.registry_password = self.stored_password
        has_secret = bool(instance.registry_password or instance.aws_secret_access_key)
        instance.credentials_host = self.login_host if has_secret else ""
        if commit:
            instance.save()
        return instance
