"""AWS ECR end to end: moto as AWS, a TLS registry answering as the ECR host, the real daemon."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from orchestrator.models import ContainerInstance, EcrTokenCache, PullJob
from orchestrator.pulls.actions import queue_pull

from .helpers import image_present, remove_image, wait_for_job

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FETCHED = re.compile(r"ecr: fetched a new authorization token for (\S+)")


def ecr_instance(stack, name: str, **fields) -> ContainerInstance:
    image, tag = stack.images["ecr"].rsplit(":", 1)
    values = dict(
        name=name,
        image_name=image,
        image_tag=tag,
        registry_url=image.rsplit("/", 1)[0] + "/",
        registry_username="AWS",
        download_retries=1,
        download_retry_interval=200,
        download_timeout=120,
    )
    values.update(fields)
    return ContainerInstance.objects.create(**values)


def fetches(worker) -> int:
    return len(FETCHED.findall(worker.log()))


def test_a_pasted_ecr_password_pulls(stack, worker):
    remove_image(stack, stack.images["ecr"])
    instance = ecr_instance(stack, "ecr-pasted", registry_password=stack.ecr_password)
    job, _ = queue_pull(instance)
    job = wait_for_job(job.pk)
    assert job.state == "succeeded", job.as_json()
    assert image_present(stack, stack.images["ecr"])


def test_tokens_from_access_keys_pull_and_the_second_pull_reuses_the_cached_token(stack, worker, caplog):
    remove_image(stack, stack.images["ecr"])
    EcrTokenCache.objects.all().delete()
    instance = ecr_instance(
        stack,
        "ecr-keys",
        aws_auth="keys",
        aws_access_key_id="AKIAEXAMPLEKEY",
        aws_secret_access_key="secret-marker-ecr",
    )
    before = fetches(worker)
    # The console makes the password (in this process: the live server answers the agent's claim), and the
    # agent gets only that for the one job: the keys never reach the gateway.
    with caplog.at_level(logging.INFO, logger="orchestrator.pulls.credentials"):
        first = wait_for_job(queue_pull(instance)[0].pk)
        assert first.state == "succeeded", first.as_json()
        second = wait_for_job(queue_pull(instance)[0].pk)
        assert second.state == "succeeded", second.as_json()
    console_fetches = [record for record in caplog.records if FETCHED.search(record.getMessage())]
    assert len(console_fetches) == 1, "the second pull must reuse the cached ECR password"
    assert fetches(worker) == before, "the agent must not ask AWS with the instance's keys"
    # Cached encrypted, refreshed at half its life; moto's past expiry was not believed.
    cached = EcrTokenCache.objects.get()
    assert cached.expires_at > timezone.now() + timedelta(hours=11)
    assert abs((cached.refresh_at - cached.fetched_at) - timedelta(hours=6)) < timedelta(seconds=5)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM orchestrator_ecrtokencache")
        (raw,) = cursor.fetchone()
    assert stack.ecr_password not in raw
    log = worker.log()
    assert stack.ecr_password not in log and "secret-marker-ecr" not in log


def test_the_default_credential_chain_makes_tokens_too(stack, worker):
    # "The gateway's AWS credentials" are the agent's own (its environment here): it asks AWS itself, once,
    # and keeps the password in memory for the next pull.
    instance = ecr_instance(stack, "ecr-chain", aws_auth="chain")
    before = fetches(worker)
    job = wait_for_job(queue_pull(instance)[0].pk)
    assert job.state == "succeeded", job.as_json()
    again = wait_for_job(queue_pull(instance)[0].pk)
    assert again.state == "succeeded", again.as_json()
    assert fetches(worker) - before <= 1, "the agent must reuse the password it made"
    assert fetches(worker) >= 1, "the agent makes chain passwords itself"


def test_an_expired_pasted_password_fails_fast_without_the_daemon(stack, worker):
    from tests.stack import start_dockerd, stop_dockerd

    instance = ecr_instance(
        stack,
        "ecr-expired",
        registry_password=stack.ecr_password,
        registry_password_expires_at=timezone.now() - timedelta(minutes=5),
    )
    # With the daemon stopped, touching it would say daemon_unreachable instead.
    stop_dockerd(stack)
    try:
        started = time.monotonic()
        job = wait_for_job(queue_pull(instance)[0].pk, timeout=60)
        elapsed = time.monotonic() - started
    finally:
        start_dockerd(stack)
    assert job.state == "failed"
    assert job.error_code == "token_expired"
    assert "aws ecr get-login-password --region us-east-1" in job.error_message
    assert job.attempt == 1
    assert elapsed < 10


def test_the_form_with_access_keys_checks_through_aws_and_pulls(stack, worker, operator_client):
    remove_image(stack, stack.images["ecr"])
    image, tag = stack.images["ecr"].rsplit(":", 1)
    response = operator_client.post(
        reverse("instance-create"),
        {
            "name": "ecr-form",
            "enabled": "on",
            "image_name": image,
            "image_tag": tag,
            "registry_url": "https://" + image.rsplit("/", 1)[0],
            "registry_username": "",
            "registry_password": "",
            "aws_auth": "keys",
            "aws_access_key_id": "AKIAFORMKEY",
            "aws_secret_access_key": "form-secret-marker",
            "download_retries": 1,
            "download_retry_interval": 200,
            "download_timeout": 120,
        },
    )
    assert response.status_code == 302, response.context["form"].errors
    instance = ContainerInstance.objects.get(name="ecr-form")
    assert instance.registry_username == "AWS"
    assert instance.aws_secret_access_key == "form-secret-marker"
    job = wait_for_job(PullJob.objects.get(instance=instance).pk)
    assert job.state == "succeeded", job.as_json()
    edit = operator_client.get(reverse("instance-edit", args=[instance.pk])).content.decode()
    assert "form-secret-marker" not in edit


def test_a_pasted_expired_ecr_password_is_refused_by_the_form_with_the_command(stack, operator_client):
    body = {"payload": "x", "datakey": "y", "version": "2", "type": "DATA_KEY", "expiration": int(time.time()) - 3600}
    expired = base64.b64encode(json.dumps(body).encode()).decode()
    image, tag = stack.images["ecr"].rsplit(":", 1)
    response = operator_client.post(
        reverse("instance-create"),
        {
            "name": "ecr-old",
            "image_name": image,
            "image_tag": tag,
            "registry_url": image.rsplit("/", 1)[0],
            "registry_username": "AWS",
            "registry_password": expired,
            "aws_auth": "",
            "download_retries": 1,
            "download_retry_interval": 200,
            "download_timeout": 120,
        },
    )
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors["registry_password"])
    assert "aws ecr get-login-password --region us-east-1" in errors
    assert expired not in response.content.decode()


def test_the_check_says_when_a_pasted_ecr_password_expires(stack, worker, operator_client):
    body = {
        "payload": "x",
        "datakey": "y",
        "version": "2",
        "type": "DATA_KEY",
        "expiration": int(time.time()) + 3 * 3600,
    }
    pasted = base64.b64encode(json.dumps(body).encode()).decode()
    image, tag = stack.images["ecr"].rsplit(":", 1)
    response = operator_client.post(
        reverse("registry-check"),
        {
            "image_name": image,
            "image_tag": tag,
            "registry_url": image.rsplit("/", 1)[0],
            "registry_username": "AWS",
            "registry_password": pasted,
            "name": "x",
            "download_retries": 1,
            "download_retry_interval": 100,
            "download_timeout": 60,
        },
    )
    data = response.json()
    assert "expires at" in data["password_note"] and "in 2 h" in data["password_note"]
    # moto's registry refuses this made-up password: the check says so, without echoing it.
    assert data["error"]["code"] == "auth_failed"
    assert pasted not in response.content.decode()


def test_validating_the_form_with_access_keys_writes_nothing(stack, worker):
    from orchestrator.instances.forms import ContainerInstanceForm

    EcrTokenCache.objects.all().delete()
    image, tag = stack.images["ecr"].rsplit(":", 1)
    form = ContainerInstanceForm(
        {
            "name": "ecr-validate",
            "image_name": image,
            "image_tag": tag,
            "registry_url": "https://" + image.rsplit("/", 1)[0],
            "aws_auth": "keys",
            "aws_access_key_id": "AKIAVALIDATEKEY",
            "aws_secret_access_key": "validate-secret-marker",
            "download_retries": 1,
            "download_retry_interval": 200,
            "download_timeout": 120,
        },
        instance=ContainerInstance(),
    )
    assert form.is_valid(), form.errors
    assert form.check_result is not None and form.check_result.ok, form.check_result
    assert not EcrTokenCache.objects.exists(), "validation must not write the ECR token cache"
