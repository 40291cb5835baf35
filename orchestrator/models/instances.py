"""Container instances: the Kura orchestrator form, one row per container on the gateway."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from orchestrator.containers.parsers import CONTAINER_NAME_PATTERN, DEFAULT_LOGGER, LOGGER_CHOICES
from orchestrator.security.encryption import EncryptedTextField
from registries.credentials import login_host
from registries.reference import ReferenceError, parse_normalized

from .gateways import LOCAL, Gateway


def default_gateway() -> int | None:
    """Instances made without a gateway (in code, or before there were gateways) run on ``local``."""
    return Gateway.objects.filter(name=LOCAL).values_list("pk", flat=True).first()


class ContainerInstance(models.Model):
    gateway = models.ForeignKey(
        Gateway,
        on_delete=models.PROTECT,
        related_name="instances",
        default=default_gateway,
        help_text="The Docker host the container runs on; its agent pulls the image.",
    )
    name = models.CharField(
        "container name",
        max_length=128,
        validators=[
            RegexValidator(
                rf"^{CONTAINER_NAME_PATTERN}$",
                "Use letters, digits, '_', '.' and '-', starting with a letter or digit "
                "(Docker's rule for container names).",
            )
        ],
        help_text="The name of the container on the gateway, e.g. 'web' or 'modbus-bridge'. "
        "Letters, digits, '_', '.', '-'.",
    )
    enabled = models.BooleanField(
        default=True,
        help_text="When enabled, saving pulls the image and runs the container; disabling stops and removes the "
        "container (the image stays). Kura: container.enabled.",
    )
    image_name = models.CharField(
        max_length=512,
        help_text="The image repository without the tag, e.g. 'myuser/myapp' on Docker Hub or "
        "'123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app'. You may paste a full image URI here.",
    )
    image_tag = models.CharField(
        max_length=128,
        default="latest",
        help_text="The image version to pull, e.g. '1.4' or 'latest'. Kura: container.image.tag.",
    )
    registry_url = models.CharField(
        "authentication registry URL",
        max_length=512,
        blank=True,
        help_text="Where to log in. Leave blank for Docker Hub. For AWS ECR, the image URI up to the image name. "
        "Kura: registry.hostname.",
    )
    registry_username = models.CharField(
        "authentication username",
        max_length=255,
        blank=True,
        help_text="Registry user name; 'AWS' for Amazon ECR. Leave blank for public images.",
    )
    registry_password = EncryptedTextField(
        "password",
        blank=True,
        default="",
        help_text="Stored encrypted and never shown again.",
    )

    class AwsAuth(models.TextChoices):
        PASTED = "", "Paste a password (aws ecr get-login-password)"
        KEYS = "keys", "Generate it with an AWS access key"
        CHAIN = "chain", "Generate it with the gateway's AWS credentials (role, environment, ~/.aws)"

    # The login host the stored password and AWS secret were entered for (host[:port], Docker Hub as docker.io).
    # A secret is only ever sent there: see orchestrator/pulls/credentials.py.
    credentials_host = models.CharField(max_length=300, blank=True, editable=False)

    aws_auth = models.CharField(
        "ECR password source",
        max_length=8,
        choices=AwsAuth.choices,
        blank=True,
        default="",
        help_text="Only for AWS ECR. A pasted password expires after 12 hours; generated ones are renewed "
        "automatically before every pull.",
    )
    aws_access_key_id = models.CharField(
        "AWS access key ID",
        max_length=128,
        blank=True,
        help_text="An IAM user's key with the ecr:GetAuthorizationToken permission "
        "(and pull rights on the repository).",
    )
    aws_secret_access_key = EncryptedTextField(
        "AWS secret access key", blank=True, default="", help_text="Stored encrypted and never shown again."
    )
    registry_password_expires_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When a pasted ECR password stops working."
    )
    pull_platform = models.CharField(
        "platform to pull",
        max_length=64,
        blank=True,
        help_text="Blank: the gateway's own platform. Set when \u201cPull anyway\u201d chose another one (emulation).",
    )
    download_retries = models.PositiveIntegerField(
        "image download retries",
        default=5,
        validators=[MaxValueValidator(1000)],
        help_text="How many more times to try when a download fails. 0 means keep trying until it works "
        "(Kura's meaning).",
    )
    download_retry_interval = models.PositiveIntegerField(
        "image download retry interval (ms)",
        default=30000,
        validators=[MaxValueValidator(24 * 3600 * 1000)],
        help_text="Milliseconds to wait between two attempts. Default 30000 (30 seconds).",
    )
    download_timeout = models.PositiveIntegerField(
        "image download timeout (s)",
        default=500,
        validators=[MaxValueValidator(7 * 24 * 3600)],
        help_text="Seconds one download attempt may take before it is abandoned. Default 500.",
    )
    # --- the container (Kura's fields; parsed by orchestrator/containers/parsers.py) ---
    internal_ports = models.CharField(
        "internal ports",
        max_length=1000,
        blank=True,
        help_text="Ports the program inside the container listens on, separated by commas, e.g. 80, 53:udp. "
        "Add :udp or :sctp for those protocols (tcp otherwise). Kura: container.ports.internal.",
    )
    external_ports = models.CharField(
        "external ports",
        max_length=1000,
        blank=True,
        help_text="The gateway ports that forward to them, in the same order and the same number, e.g. 8080, 5353. "
        "Kura: container.ports.external.",
    )
    privileged = models.BooleanField(
        "privileged mode",
        default=False,
        help_text="Give the container full access to the gateway (all devices, no isolation). Only for programs "
        "that need it, such as some hardware drivers. Kura: container.privileged.",
    )
    env = models.TextField(
        "environment variables",
        blank=True,
        help_text="Settings passed to the program: one NAME=value per line (a value may contain commas), or "
        "Kura's NAME=value, NAME2=value2 on one line. Kura: container.env.",
    )
    entrypoint = models.TextField(
        "entrypoint override",
        blank=True,
        help_text="The command to start instead of the image's own, as comma-separated words, e.g. "
        "python3,app.py,--verbose; or one word per line when a word contains a comma. Blank: the image's command. "
        "Kura: container.entrypoint.",
    )
    memory = models.CharField(
        max_length=32,
        blank=True,
        help_text="The most memory the container may use: a whole number with b, k, m or g, e.g. 256m or 1g "
        "(at least 6m). Blank: no limit. Kura: container.memory.",
    )
    cpus = models.CharField(
        "CPUs",
        max_length=16,
        blank=True,
        help_text="How many CPU cores the container may use; decimals allowed, e.g. 0.5 or 1.5. Blank: no limit. "
        "Kura: container.cpus.",
    )
    gpus = models.CharField(
        "GPUs",
        max_length=16,
        blank=True,
        help_text="Nvidia GPUs for the container: 'all' or a number. Leave blank when the gateway has no Nvidia GPU. "
        "Kura: container.gpus.",
    )
    volumes = models.TextField(
        "volume mounts",
        blank=True,
        help_text="Folders of the gateway to show inside the container, as gateway-path:container-path, separated by "
        "commas or lines, e.g. /srv/app/data:/data. Add :ro to make one read-only. Kura: container.volume.",
    )
    devices = models.TextField(
        "peripheral devices",
        blank=True,
        help_text="Gateway devices to pass to the container, separated by commas, e.g. /dev/ttyUSB0, /dev/gpiomem. "
        "Usually needs privileged mode. Kura: container.device.",
    )
    runtime = models.CharField(
        max_length=128,
        blank=True,
        help_text="Another container runtime installed on the gateway, e.g. nvidia. Blank: Docker's default. "
        "Kura: container.runtime.",
    )
    network_mode = models.CharField(
        "network mode",
        max_length=200,
        blank=True,
        help_text="bridge (own network, ports forwarded), host (the gateway's network, no port forwarding needed), "
        "none (no network), or container:NAME (share another container's network). Blank: Docker's default, bridge. "
        "Kura: container.networkMode.",
    )

    logger_type = models.CharField(
        "logger type",
        max_length=16,
        choices=LOGGER_CHOICES,
        default=DEFAULT_LOGGER,
        help_text="Where the container's output goes. The console can show the last lines only for DEFAULT, LOCAL, "
        "JSON_FILE and JOURNALD. Kura: container.loggingType.",
    )
    logger_parameters = models.TextField(
        "logger parameters",
        blank=True,
        help_text="Options of that logger as option=value, separated by commas or lines, e.g. max-size=10m, "
        "max-file=3. Kura: container.loggerParameters.",
    )
    restart_on_failure = models.BooleanField(
        "restart container on failure",
        default=False,
        help_text="Start the container again when it stops or the gateway reboots, unless someone stopped it "
        "(Docker's unless-stopped policy, as Kura uses). Kura: container.restart.onfailure.",
    )
    digest_pin = models.CharField(
        "required image digest",
        max_length=100,
        blank=True,
        help_text="Optional. Run the container only if the pulled image has exactly this digest (sha256:..., shown on "
        "a pull's page), so a changed image behind the same tag is refused. Blank: any image behind the tag.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        # Docker's names are per daemon, so per gateway here.
        constraints = [models.UniqueConstraint(fields=["gateway", "name"], name="one_name_per_gateway")]
        permissions = [
            ("pull_containerinstance", "Can pull the image of a container instance"),
            ("host_access", "Can give containers access to the host"),
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        # Spelled out so no future field (or the password) slips into a log line.
        return f"<ContainerInstance {self.pk}: {self.name} {self.reference}>"

    def save(self, *args, **kwargs) -> None:
        # A secret stored without a host (made in code rather than through the form, which binds it
        # itself) belongs to the host the row names when it is first stored; a later change of the
        # row's host keeps the old binding, so the secret is refused there (pulls/credentials.py).
        has_secret = bool(self.registry_password or self.aws_secret_access_key)
        if not has_secret:
            self.credentials_host = ""
        elif not self.credentials_host:
            self.credentials_host = login_host(self.image_name, self.registry_url)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("instance-detail", args=[self.pk])

    @property
    def reference(self) -> str:
        """The image reference as the user wrote it, with its tag."""
        return f"{self.image_name}:{self.image_tag or 'latest'}"

    @property
    def pull_reference(self) -> str:
        """The full reference the daemon pulls, e.g. 'docker.io/library/busybox:latest'."""
        return normalized_reference(self.image_name, self.image_tag)

    @property
    def has_password(self) -> bool:
        return bool(self.registry_password)

    @property
    def password_expired(self) -> bool:
        return self.registry_password_expires_at is not None and self.registry_password_expires_at <= timezone.now()


def normalized_reference(image_name: str, image_tag: str) -> str:
    """'busybox', 'latest' -> 'docker.io/library/busybox:latest'; the one place a reference is normalized."""
    written = f"{image_name}:{image_tag or 'latest'}"
    try:
        return str(parse_normalized(written))
    except ReferenceError:
        # The form refuses bad references; a row edited around it still gets a job that fails clearly.
        return written
