"""Check access: can the gateway pull this image with these credentials? One check for the button and the save.

The check runs in the instance's gateway's agent (:mod:`orchestrator.control.handlers`):
it resolves the credentials the pull would use and asks the registry through the
gateway's daemon for the image's digest and platforms; nothing is downloaded. An
ECR password from stored or typed AWS access keys is made here, in the console:
the keys never travel to a gateway. The
web waits a few seconds for the answer; without one, the check goes on and the
answer shows when it comes.

One policy for what a failed check means to the form, whoever failed:
a definite refusal (wrong password, unknown image, bad AWS keys) is a field
error; a temporary failure (AWS, the registry or the daemon unreachable,
rate limited) is a warning, and the save goes ahead: the pull retries.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.views.decorators.debug import sensitive_variables

from orchestrator.control.ask import Reply, ask
from orchestrator.models import ContainerInstance, ControlRequest, Gateway
from orchestrator.pulls import credentials
from orchestrator.pulls.credentials import Login
from registries.check import CheckResult
from registries.errors import PullError
from registries.reference import registry_of


@dataclass
class Check:
    """The check's result, or (``result`` None) why there is none yet and where its answer will be."""

    result: CheckResult | None
    note: str = ""
    request: ControlRequest | None = None


@sensitive_variables("login", "secrets")
def check_access(reference: str, login: Login, gateway: Gateway, *, user=None, instance=None) -> Check:
    """Ask ``gateway``'s agent to check ``reference`` (normalized) with ``login``. Never raises."""
    if login.aws_auth == ContainerInstance.AwsAuth.KEYS:
        try:
            login = _with_ecr_password(reference, login)
        except PullError as error:
            field = "aws_access_key_id"
            return Check(result=CheckResult(error={"code": error.code, "message": error.message, "field": field}))
    public, secrets = login.split()
    reply = ask(
        gateway,
        ControlRequest.Kind.CHECK,
        instance=instance,
        user=user,
        payload={**public, "reference": reference},
        secrets=secrets,
    )
    return from_reply(reply)


@sensitive_variables("login", "auth")
def _with_ecr_password(reference: str, login: Login) -> Login:
    """AWS access keys stay in the console: it makes the ECR password, and the agent gets only that (valid 12 h).

    Raises PullError (bad keys, AWS unreachable). Nothing is cached: checking writes nothing.
    """
    auth, _ = credentials.resolve(registry_of(reference), login, store=False)
    return Login(registry_url=login.registry_url, username="AWS", password=auth["password"])


def from_reply(reply: Reply) -> Check:
    if reply.pending:
        return Check(result=None, note=reply.note, request=reply.request)
    if (reply.answer.get("error") or {}).get("code") == "expired":
        return Check(result=None, note=reply.answer["error"]["message"], request=reply.request)
    return Check(result=CheckResult(**reply.answer), request=reply.request)


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
