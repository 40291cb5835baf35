"""Registry kinds: which registry a host belongs to, and what to tell the user.

Each kind is one data-like ``RegistryKind`` entry in ``KINDS``: the hosts (or
a host pattern) it answers to, what goes in the Registry URL field, what the
username and password are and where to get them, and an example image. The
first entry whose matcher accepts a host wins; the generic Docker Registry v2
kind comes last and accepts anything.

Adding a kind = one entry here (before ``GENERIC``) + its tests.

Hosts can be extended at run time (a GitLab instance of your own, say) with
``detect_kind(host, extra_hosts={"gitlab": ["registry.example.com"]})``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from registries.ecr import ECR_HOST_PATTERN, ECR_PUBLIC_HOST, ECR_USERNAME
from registries.reference import DOCKER_HUB_HOSTS

__all__ = [
    "ACR",
    "DOCKER_HUB",
    "ECR",
    "ECR_PUBLIC",
    "GENERIC",
    "GHCR",
    "GITLAB",
    "GOOGLE",
    "KINDS",
    "QUAY",
    "RegistryKind",
    "detect_kind",
    "get_kind",
    "host_without_port",
]


def host_without_port(host: str) -> str:
    """Lowercase host with any ``:port`` removed (``[::1]:5000`` -> ``[::1]``)."""
    value = (host or "").strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end != -1 else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


@dataclass(frozen=True)
class RegistryKind:
    """One kind of registry and the form help that goes with it."""

    slug: str
    label: str
    #: Exact hosts (lowercase, without port) of this kind.
    hosts: frozenset[str]
    #: A pattern the whole host (lowercase, without port) must match, or None.
    host_pattern: re.Pattern[str] | None
    #: What belongs in the Registry URL field.
    registry_url_rule: str
    username_hint: str
    #: What the password is and where to get it.
    password_hint: str
    #: The help shown under the form for this kind.
    help: str
    example_image: str
    #: The username this kind always uses (ECR: ``AWS``), or None.
    fixed_username: str | None = None
    #: True for the catch-all kind.
    catch_all: bool = False

    def matches(self, host: str) -> bool:
        """True if ``host`` (any case, port allowed) belongs to this kind."""
        if self.catch_all:
            return True
        bare = host_without_port(host)
        if bare in self.hosts:
            return True
        return self.host_pattern is not None and self.host_pattern.fullmatch(bare) is not None


DOCKER_HUB = RegistryKind(
    slug="dockerhub",
    label="Docker Hub",
    # A blank Registry URL means Docker Hub, as it does for the Docker CLI.
    hosts=DOCKER_HUB_HOSTS | {""},
    host_pattern=None,
    registry_url_rule=(
        "Leave the Registry URL blank (docker.io, index.docker.io and https://index.docker.io/v1/ mean the same)."
    ),
    username_hint="Your Docker Hub username (not your e-mail address).",
    password_hint=(  # noqa: S106 - help text, not a password
        "A personal access token with read access, from https://app.docker.com/settings/personal-access-tokens."
    ),
    help=(
        "Username: your Docker Hub user; Password: a personal access token from "
        "https://app.docker.com/settings/personal-access-tokens. A private image "
        "is named <user>/<image>."
    ),
    example_image="myuser/myapp",
)

ECR = RegistryKind(
    slug="ecr",
    label="Amazon ECR (private)",
    hosts=frozenset(),
    host_pattern=ECR_HOST_PATTERN,
    registry_url_rule=(
        "The image URI up to the image name, e.g. "
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/ for "
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app."
    ),
    username_hint="AWS, exactly (it is case-sensitive).",
    password_hint=(  # noqa: S106 - help text, not a password
        "The output of `aws ecr get-login-password --region <region>`; it is valid for 12 hours."
    ),
    help=(
        "Username: AWS; Password: the output of "
        "`aws ecr get-login-password --region <region>` (valid 12 hours). "
        "Registry URL: the image URI up to the image name."
    ),
    example_image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app",
    fixed_username=ECR_USERNAME,
)

ECR_PUBLIC = RegistryKind(
    slug="ecr-public",
    label="Amazon ECR Public",
    hosts=frozenset({ECR_PUBLIC_HOST}),
    host_pattern=None,
    registry_url_rule="public.ecr.aws, or blank when the image name starts with it.",
    username_hint="Leave blank for anonymous pulls, or AWS for a higher rate limit.",
    password_hint=(  # noqa: S106 - help text, not a password
        "Blank for anonymous pulls, or the output of `aws ecr-public get-login-password --region us-east-1`."
    ),
    help=(
        "Public images pull without credentials: leave username and password "
        "blank. For a higher rate limit: Username: AWS; Password: the output of "
        "`aws ecr-public get-login-password --region us-east-1`."
    ),
    example_image="public.ecr.aws/docker/library/busybox",
)

GHCR = RegistryKind(
    slug="ghcr",
    label="GitHub Container Registry",
    hosts=frozenset({"ghcr.io"}),
    host_pattern=None,
    registry_url_rule="ghcr.io",
    username_hint="Your GitHub username.",
    password_hint=(  # noqa: S106 - help text, not a password
        "A personal access token (classic) with the read:packages scope, from https://github.com/settings/tokens."
    ),
    help=(
        "Username: your GitHub user; Password: a personal access token (classic) "
        "with read:packages from https://github.com/settings/tokens."
    ),
    example_image="ghcr.io/owner/app",
)

GITLAB = RegistryKind(
    slug="gitlab",
    label="GitLab Container Registry",
    hosts=frozenset({"registry.gitlab.com"}),
    host_pattern=None,
    registry_url_rule="The registry host, e.g. registry.gitlab.com.",
    username_hint="The deploy token's username (gitlab+deploy-token-N) or your GitLab user.",
    password_hint=(  # noqa: S106 - help text, not a password
        "A deploy token, or a personal/project access token with the "
        "read_registry scope (project Settings > Repository > Deploy tokens)."
    ),
    help=(
        "Username: a deploy token's username or your GitLab user; Password: the "
        "deploy token, or an access token with read_registry."
    ),
    example_image="registry.gitlab.com/group/project/app",
)

QUAY = RegistryKind(
    slug="quay",
    label="Quay.io",
    hosts=frozenset({"quay.io"}),
    host_pattern=None,
    registry_url_rule="quay.io",
    username_hint="A robot account, e.g. myorg+puller, or your Quay user.",
    password_hint=(  # noqa: S106 - help text, not a password
        "The robot account's token (Account or Organization Settings > Robot Accounts), or your encrypted CLI password."
    ),
    help=(
        "Username: a robot account such as org+name; Password: its token, from "
        "the organization's Robot Accounts page on https://quay.io."
    ),
    example_image="quay.io/myorg/app",
)

ACR = RegistryKind(
    slug="acr",
    label="Azure Container Registry",
    hosts=frozenset(),
    host_pattern=re.compile(r"(?:[a-z0-9-]+\.)+azurecr\.(?:io|cn|us)", re.ASCII),
    registry_url_rule="The login server, e.g. myregistry.azurecr.io.",
    username_hint=("A repository-scoped token name, a service principal's application ID, or the admin user."),
    password_hint=(  # noqa: S106 - help text, not a password
        "That token's or service principal's password (Azure portal > the registry > Tokens or Access keys)."
    ),
    help=(
        "Username: a token name or service principal ID; Password: its password, "
        "from the registry's Tokens or Access keys page in the Azure portal."
    ),
    example_image="myregistry.azurecr.io/team/app",
)

GOOGLE = RegistryKind(
    slug="google",
    label="Google Artifact Registry",
    hosts=frozenset({"gcr.io", "us.gcr.io", "eu.gcr.io", "asia.gcr.io"}),
    host_pattern=re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*-docker\.pkg\.dev", re.ASCII),
    registry_url_rule="The repository host, e.g. europe-west1-docker.pkg.dev.",
    username_hint="oauth2accesstoken, _json_key or _json_key_base64.",
    password_hint=(  # noqa: S106 - help text, not a password
        "With oauth2accesstoken: the output of `gcloud auth print-access-token` "
        "(valid 1 hour); with _json_key: a service account's JSON key; with "
        "_json_key_base64: that key in base64."
    ),
    help=(
        "Username: _json_key; Password: a service account JSON key with the "
        "Artifact Registry Reader role (or oauth2accesstoken with "
        "`gcloud auth print-access-token`)."
    ),
    example_image="europe-west1-docker.pkg.dev/project/repo/app",
)

GENERIC = RegistryKind(
    slug="generic",
    label="Docker Registry v2 (Harbor, self-hosted, other)",
    hosts=frozenset(),
    host_pattern=None,
    registry_url_rule="The registry host and port, e.g. registry.example.com:5000.",
    username_hint="Your registry user; for Harbor a robot account such as robot$project+name.",
    password_hint="That user's password or the robot account's secret.",  # noqa: S106 - help text, not a password
    help=(
        "Username and Password: an account of that registry (for Harbor a robot "
        "account and its secret). Registry URL: the host and port of the image name."
    ),
    example_image="registry.example.com:5000/team/app",
    catch_all=True,
)

#: Every kind, in detection order; the catch-all comes last.
KINDS: tuple[RegistryKind, ...] = (DOCKER_HUB, ECR, ECR_PUBLIC, GHCR, GITLAB, QUAY, ACR, GOOGLE, GENERIC)

_BY_SLUG = {kind.slug: kind for kind in KINDS}


def get_kind(slug: str) -> RegistryKind:
    """The kind with this slug; KeyError for an unknown one."""
    return _BY_SLUG[slug]


def detect_kind(host: str, *, extra_hosts: Mapping[str, Iterable[str]] | None = None) -> RegistryKind:
    """The kind of registry at ``host`` (blank means Docker Hub).

    ``extra_hosts`` maps a kind's slug to more hosts of that kind, e.g.
    ``{"gitlab": ["registry.example.com"]}`` from a setting; they are checked
    before the built-in matchers. Unknown slugs are ignored.
    """
    bare = host_without_port(host)
    if extra_hosts:
        for slug, hosts in extra_hosts.items():
            kind = _BY_SLUG.get(slug)
            if kind is None:
                continue
            if bare in {host_without_port(h) for h in hosts}:
                return kind
    for kind in KINDS:
        if kind.matches(bare):
            return kind
    return GENERIC
