"""Check before you pull: access, digest and platforms of an image, without downloading it.

Asks the Docker daemon for the image's registry data (``GET
/distribution/<name>/json``, the SDK's ``inspect_distribution`` /
``images.get_registry_data``) with the form's credentials. The daemon does the
registry conversation, so what works here works for the pull: same network,
same certificates, same proxy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .daemon import open_client
from .errors import PullError, classify_exception, scrub
from .platforms import best_match, from_docker_info, from_manifest_platform

CHECK_TIMEOUT = 30


@dataclass
class CheckResult:
    digest: str | None = None
    media_type: str | None = None
    platforms: list[str] = field(default_factory=list)
    gateway_platform: str | None = None
    supported: bool | None = None
    #: The platform the daemon would pull (the gateway's own or a compatible one).
    match: str | None = None
    error: dict | None = None

    def as_json(self) -> dict:
        data = asdict(self)
        data.pop("match")
        return data

    @property
    def ok(self) -> bool:
        return self.error is None


def check_image(docker_host: str, reference: str, auth_config: dict | None) -> CheckResult:
    """Look the image up through the daemon. Never raises; errors come back in ``error``."""
    secrets = (auth_config or {}).get("password", "")
    try:
        client = open_client(docker_host, timeout=CHECK_TIMEOUT)
    except PullError as error:
        return CheckResult(error={"code": error.code, "message": error.message})
    try:
        gateway = from_docker_info(client.info())
        data = client.inspect_distribution(reference, auth_config=auth_config)
    except Exception as exc:  # every failure becomes an error code for the user
        error = classify_exception(exc, reference, docker_host)
        return CheckResult(error={"code": error.code, "message": scrub(error.message, (secrets,))})
    finally:
        client.close()
    descriptor = data.get("Descriptor") or {}
    platforms = []
    for entry in data.get("Platforms") or []:
        name = from_manifest_platform(entry)
        if name not in platforms and not name.startswith("unknown"):
            platforms.append(name)
    match = best_match(gateway, platforms) if platforms else None
    return CheckResult(
        digest=descriptor.get("digest"),
        media_type=descriptor.get("mediaType"),
        platforms=platforms,
        gateway_platform=gateway,
        # No platform information at all (rare, old schema): let the pull decide.
        supported=match is not None if platforms else None,
        match=match,
    )


def unsupported_message(result: CheckResult) -> str:
    """'this image is built for linux/arm64 only; this gateway is linux/amd64'."""
    built = ", ".join(result.platforms)
    only = " only" if len(result.platforms) == 1 else ""
    return (
        f"This image is built for {built}{only}; this gateway is {result.gateway_platform}. "
        "Pick a tag built for the gateway, or tick \u201cPull anyway\u201d if the gateway emulates other platforms."
    )
