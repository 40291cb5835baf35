"""The leak test: marker passwords for every registry kind go through the whole product and come out nowhere.

Creates instances for each kind through the form, pulls (one succeeds, one fails
on a wrong password, ECR with a pasted password and with AWS keys), edits them,
views every page and JSON endpoint as each role, then reads the database (SQL
dump and dumpdata), every log the stack and worker wrote, and every key and
message in Redis, looking for the markers in plain text and base64.
"""

from __future__ import annotations

import base64
import io
import logging
import sqlite3
from pathlib import Path

import pytest
import redis
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from orchestrator.models import ContainerInstance, PullJob

from .helpers import wait_for_job

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WRONG = "Wr0ngMarker-4Lp9"
EXTERNAL = {
    # kind: (image name, registry url, username, marker password)
    "dockerhub": ("leakuser/private-app", "", "leakuser", "HubMarker-9sKd2"),
    "ghcr": ("ghcr.io/leakorg/app", "ghcr.io", "leakuser", "GhcrMarker-ghp_7Yq"),
    "quay": ("quay.io/leakorg/app", "quay.io", "leakorg+robot", "QuayMarker-Q8z1"),
    "acr": ("leaky.azurecr.io/app", "leaky.azurecr.io", "leaky", "AcrMarker-3xV0"),
    "google": (
        "europe-west1-docker.pkg.dev/proj/repo/app",
        "europe-west1-docker.pkg.dev",
        "oauth2accesstoken",
        "GcpMarker-ya29x",
    ),
    "gitlab": ("registry.gitlab.com/leak/app", "registry.gitlab.com", "leakuser", "GitlabMarker-glpat1"),
}
AWS_SECRET = "AwsSecretMarker-wJalrXUtnFEMI"


def form(name: str, image: str, tag: str, url: str, user: str, password: str, enabled: bool, **extra) -> dict:
    return {
        "name": name,
        "enabled": "on" if enabled else "",
        "image_name": image,
        "image_tag": tag,
        "registry_url": url,
        "registry_username": user,
        "registry_password": password,
        "download_retries": 1,
        "download_retry_interval": 100,
        "download_timeout": 60,
        **extra,
    }


def spellings(secret: str) -> set[str]:
    raw = secret.encode()
    return {
        secret,
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        base64.b64encode(b"user:" + raw).decode()[8:].rstrip("="),  # inside a basic-auth pair
    }


def redis_dump(url: str) -> str:
    client = redis.Redis.from_url(url)
    parts = []
    for key in client.scan_iter("*"):
        kind = client.type(key).decode()
        parts.append(repr(key))
        if kind == "string":
            parts.append(repr(client.get(key)))
        elif kind == "list":
            parts.extend(repr(item) for item in client.lrange(key, 0, -1))
        elif kind == "hash":
            parts.append(repr(client.hgetall(key)))
        elif kind == "set":
            parts.append(repr(client.smembers(key)))
        elif kind == "zset":
            parts.append(repr(client.zrange(key, 0, -1, withscores=True)))
    client.close()
    return "\n".join(parts)


def test_no_secret_leaks_anywhere(stack, worker, operator_client, admin_client, viewer_client, caplog):
    caplog.set_level(logging.DEBUG)
    markers = [WRONG, AWS_SECRET, stack.registry_password, stack.ecr_password, *(m for *_, m in EXTERNAL.values())]
    local_image, local_tag = stack.images["busybox"].rsplit(":", 1)
    ecr_image, ecr_tag = stack.images["ecr"].rsplit(":", 1)
    ecr_host = ecr_image.split("/", 1)[0]

    posts = [
        form(
            "leak-local-ok",
            local_image,
            local_tag,
            stack.registry,
            stack.registry_username,
            stack.registry_password,
            True,
        ),
        form("leak-local-wrong", local_image, local_tag, stack.registry, stack.registry_username, WRONG, False),
        form("leak-ecr-pasted", ecr_image, ecr_tag, ecr_host, "AWS", stack.ecr_password, True),
        form(
            "leak-ecr-keys",
            ecr_image,
            ecr_tag,
            ecr_host,
            "",
            "",
            True,
            aws_auth="keys",
            aws_access_key_id="AKIALEAKTEST",
            aws_secret_access_key=AWS_SECRET,
        ),
        *(
            form(f"leak-{kind}", image, "1.0", url, user, pw, False)
            for kind, (image, url, user, pw) in EXTERNAL.items()
        ),
    ]
    for data in posts:
        response = operator_client.post(reverse("instance-create"), data)
        if data["name"] == "leak-local-wrong":
            # The pre-pull check refuses the wrong password; the page must not echo it.
            assert response.status_code == 200
            assert WRONG not in response.content.decode()
            ContainerInstance.objects.create(
                name="leak-local-wrong",
                image_name=local_image,
                image_tag=local_tag,
                registry_url=stack.registry,
                registry_username=stack.registry_username,
                registry_password=WRONG,
                download_retries=1,
                download_retry_interval=100,
            )
            continue
        assert response.status_code == 302, (data["name"], response.context and response.context["form"].errors)

    # Pulls: the enabled ones were queued by the form; the wrong password one is pulled by hand.
    wrong = ContainerInstance.objects.get(name="leak-local-wrong")
    operator_client.post(reverse("instance-pull", args=[wrong.pk]))
    for job in PullJob.objects.all():
        wait_for_job(job.pk)
    states = {job.instance.name: (job.state, job.error_code) for job in PullJob.objects.select_related("instance")}
    assert states["leak-local-ok"] == ("succeeded", "")
    assert states["leak-local-wrong"] == ("failed", "auth_failed")
    assert states["leak-ecr-pasted"][0] == "succeeded" and states["leak-ecr-keys"][0] == "succeeded"

    # Edit every instance with the password left blank (kept).
    for instance in ContainerInstance.objects.all():
        page = operator_client.get(reverse("instance-edit", args=[instance.pk]))
        assert page.status_code == 200

    # Every page and JSON endpoint, as each role.
    seen = []
    for client in (viewer_client, operator_client, admin_client):
        urls = [reverse("instance-list"), reverse("healthz"), reverse("admin:index")]
        for instance in ContainerInstance.objects.all():
            urls += [
                reverse("instance-detail", args=[instance.pk]),
                reverse("instance-edit", args=[instance.pk]),
                reverse("admin:orchestrator_containerinstance_change", args=[instance.pk]),
            ]
        for job in PullJob.objects.all():
            urls += [
                reverse("pull-detail", args=[job.pk]),
                reverse("pull-json", args=[job.pk]),
                reverse("admin:orchestrator_pulljob_change", args=[job.pk]),
            ]
        urls += [
            reverse("admin:orchestrator_containerinstance_changelist"),
            reverse("admin:orchestrator_pulljob_changelist"),
        ]
        for url in urls:
            seen.append(client.get(url).content.decode(errors="replace"))
            seen.append(client.get(url, HTTP_HX_REQUEST="true").content.decode(errors="replace"))
    seen.append(Client().get(reverse("healthz")).content.decode())

    # The database, as SQL and as dumpdata.
    db_path = connection.settings_dict["NAME"]
    with sqlite3.connect(db_path) as db:
        seen.append("\n".join(db.iterdump()))
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    seen.append(out.getvalue())

    # Every log: the worker's, the stack's services', and this process's.
    seen.append(worker.log())
    for log_file in Path(stack.state_dir).rglob("*.log"):
        seen.append(log_file.read_text(errors="replace"))
    seen.append(caplog.text)

    # Every key and message in Redis.
    seen.append(redis_dump(stack.redis_url))

    haystack = "\n".join(seen)
    assert len(haystack) > 100_000, "the scenario must really have produced pages, logs and dumps"
    for marker in markers:
        for spelling in spellings(marker):
            assert spelling not in haystack, f"a secret leaked ({marker[:4]}…, as {spelling[:6]}…)"
