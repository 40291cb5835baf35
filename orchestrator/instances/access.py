"""Check access: can the gateway pull this image with these credentials? One check for the button and the save.

It resolves the credentials the pull would use (a stored or typed password,
or an ECR password made from AWS credentials, which is not cached: checking
writes nothing), then asks the registry through the daemon for the image's
digest and platforms; nothing is downloaded.

One policy for what a failed check means to the form, whoever failed:
a definite refusal (wrong password, unknown image, bad AWS keys) is a field
error; a temporary failure (AWS, the registry or the daemon unreachable,
rate limited) is a warning, and the save goes ahead: the pull retries.
"""

from __future__ import annotations

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from orchestrator.models import ContainerInstance
from orchestrator.pulls import credentials
from orchestrator.pulls.credentials import Login
from registries.check import CheckResult, check_image
from registries.errors import PullError
from registries.reference import registry_of


@sensitive_variables("login", "auth")
def check_access(reference: str, login: Login) -> CheckResult:
    """Access, digest and platforms of ``reference`` (normalized). Never raises; errors come back in ``error``.

    An error from resolving the credentials (AWS) carries ``field``, the form
    field it belongs to.
    """
    try:
        auth, _ = credentials.resolve(registry_of(reference), login, store=False)
    except PullError as error:
        if not login.aws_auth:  # refusal_field() knows where the others go
            return CheckResult(error={"code": error.code, "message": error.message})
        field = "aws_access_key_id" if login.aws_auth == ContainerInstance.AwsAuth.KEYS else "aws_auth"
        return CheckResult(error={"code": error.code, "message": error.message, "field": field})
    return check_image(settings.DOCKER_HOST, reference, auth)


def refusal_field(error: dict) -> str | None:
    """The field a definite refusal belongs to; None when the failure is temporary (the save only warns)."""
    if PullError(error["code"], error["message"]).retryable:
        return None
    if error.get("field"):
        return error["field"]
    if error["code"] in ("auth_failed", "token_expired", "credentials_mismatch"):
        return "registry_password"
    if error["code"] == "not_found":
        return "image_tag" if "tag" in error["message"] else "image_name"
    return "image_name"
