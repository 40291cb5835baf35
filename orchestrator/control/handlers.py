"""What an agent does for each control request: a check, a container action, the container's output.

Each returns the answer as JSON; nothing here raises for a refusal or a dead
daemon, the answer says so.
"""

from __future__ import annotations

import dataclasses

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from orchestrator.agent import ecr
from orchestrator.containers import report
from orchestrator.containers.daemon import ContainerError
from orchestrator.containers.status import act, read_logs
from orchestrator.models import ContainerInstance
from orchestrator.pulls import credentials
from orchestrator.pulls.credentials import Login
from registries.check import CheckResult, check_image
from registries.errors import PullError
from registries.reference import registry_of

from .remote import Taken


def handle(request: Taken) -> dict:
    if request.kind == "check":
        return dataclasses.asdict(check(request.payload["reference"], Login.joined(request.payload, request.secrets)))
    if request.kind == "logs":
        # read_logs's shape: {"logs": text} or {"error": why not}.
        return read_logs(request.instance) if request.instance else {"error": "The instance is gone."}
    if request.instance is None:
        return {"error": {"code": "not_found", "message": "The instance is gone."}}
    return container_action(request.instance, request.kind)


@sensitive_variables("login", "auth")
def check(reference: str, login: Login) -> CheckResult:
    """Access, digest and platforms of ``reference`` (normalized) through this gateway's daemon; never raises.

    It resolves the credentials the pull would use: a stored or typed password (an ECR password the console
    made from stored AWS keys comes as one), or an ECR password from the gateway's own AWS identity. An error
    from resolving the credentials (AWS) carries ``field``, the form field it belongs to.
    """
    host = registry_of(reference)
    try:
        if login.aws_auth == ContainerInstance.AwsAuth.CHAIN:
            auth, _ = ecr.chain_login(host, login.registry_url)
        else:
            auth, _ = credentials.resolve(host, login, store=False)
    except PullError as error:
        if not login.aws_auth:
            return CheckResult(error={"code": error.code, "message": error.message})
        field = "aws_access_key_id" if login.aws_auth == ContainerInstance.AwsAuth.KEYS else "aws_auth"
        return CheckResult(error={"code": error.code, "message": error.message, "field": field})
    return check_image(settings.DOCKER_HOST, reference, auth)


def container_action(instance, action: str) -> dict:
    try:
        message = act(instance, action)
    except ContainerError as error:
        return {"error": {"code": error.code, "message": error.message}}
    finally:
        report.report(instance)
    return {"message": message}
