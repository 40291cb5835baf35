"""Check access: can the gateway pull this image with these credentials? One check for the button and the save.

The check runs in the instance's gateway's agent (:mod:`orchestrator.control.handlers`):
it resolves the credentials the pull would use and asks the registry through the
gateway's daemon for the image's digest and platforms; nothing is downloaded. The
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
from orchestrator.models import ControlRequest, Gateway
from orchestrator.pulls.credentials import Login
from registries.check import CheckResult
from registries.errors import PullError


@dataclass
class Check:
    """The check's result, or (``result`` None) why there is none yet and where its answer will be."""

    result: CheckResult | None
    note: str = ""
    request: ControlRequest | None = None


@sensitive_variables("login", "secrets")
def check_access(reference: str, login: Login, gateway: Gateway, *, user=None, instance=None) -> Check:
    """Ask ``gateway``'s agent to check ``reference`` (normalized) with ``login``. Never raises."""
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
