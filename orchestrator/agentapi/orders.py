"""The order for one attempt of a claimed job: what to pull, within which limits, and with which credentials.

The console decides the credentials, as the runner does before each attempt (an ECR password may need
renewing between two), and hands over only what the Docker daemon needs: a stored password, or the ECR
password it made from the stored AWS keys (never the keys: the agent holds no secret but its own). An
instance whose ECR password comes from "the gateway's AWS credentials" is the exception: those are the
agent's own, so the console resolves nothing and says ``aws_chain``; the agent asks AWS itself.

Apart from the control requests' ``secrets``, ``auth`` and ``scrub`` are the only places the agent API hands
out a secret. Nothing here logs them, and the view's locals are hidden from error reports.
"""

from __future__ import annotations

import logging

from django.views.decorators.debug import sensitive_variables

from orchestrator.models import ContainerInstance, PullJob
from orchestrator.pulls import credentials
from registries.aws import region_of
from registries.errors import PullError
from registries.reference import registry_of

log = logging.getLogger(__name__)


def rate_limited_in_a_row(job: PullJob) -> int:
    """How many of the latest attempts in a row ended rate_limited: the agent doubles its wait for each one
    (pulls.runner.retry_delay counts this one too)."""
    count = 0
    for attempt in reversed(job.attempts or []):
        if attempt.get("code") != "rate_limited":
            break
        count += 1
    return count


@sensitive_variables("auth", "secrets", "answer")
def login_for(instance: ContainerInstance, host: str) -> dict:
    """``auth`` (the Docker SDK's auth_config or None), ``scrub``, ``aws_chain`` and ``credentials_error``."""
    answer = {"auth": None, "scrub": [], "aws_chain": None, "credentials_error": None}
    try:
        if instance.aws_auth == ContainerInstance.AwsAuth.CHAIN:
            # Checked here so a non-ECR host fails the attempt with the runner's words, before any AWS call.
            region_of(host)
            answer["aws_chain"] = {"host": host, "registry_url": instance.registry_url}
            return answer
        auth, secrets = credentials.for_instance(instance, host)
    except PullError as error:
        # The agent records it as the attempt's failure (retried if the code is retryable), as the runner did.
        log.info("pull of instance %s: credentials not resolved: %s", instance.pk, error.code)
        answer["credentials_error"] = {"code": error.code, "message": error.message, "retryable": error.retryable}
        return answer
    answer["auth"] = auth
    # Only what the agent is given needs scrubbing from its messages: the password in auth. An AWS secret
    # access key among ``secrets`` stays on the console, so it is not handed over even for scrubbing.
    password = str(auth["password"]) if auth and auth.get("password") else ""
    answer["scrub"] = [str(secret) for secret in secrets if secret and str(secret) == password]
    return answer


def order(job: PullJob) -> dict:
    """The order for the attempt the agent is about to begin (the job is claimed and loaded with its instance)."""
    instance = job.instance
    number = job.attempt + 1
    return {
        "job": job.pk,
        "reference": job.reference,
        "platform": instance.pull_platform or None,
        # The instance's current limits, as the runner reads them; the retry budget is the job's own.
        "download_timeout": instance.download_timeout,
        "download_retries": job.download_retries,
        "download_retry_interval": instance.download_retry_interval,  # milliseconds, as the instance has it
        "attempt": number,
        # Whether another attempt may follow this one (PullJob.retries_left once the attempt has begun).
        "retries_left": job.download_retries == 0 or number <= job.download_retries,
        "rate_limited_in_a_row": rate_limited_in_a_row(job),
        "digest_pin": instance.digest_pin,
        **login_for(instance, registry_of(job.reference)),
    }
