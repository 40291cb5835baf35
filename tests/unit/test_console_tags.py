"""Template helpers of the pages: the registry kind of an instance, short badge labels, expiry and activity."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from orchestrator.templatetags.console import (
    expires_within,
    has_active_pull,
    kind_short_label,
    registry_kind,
    registry_kinds,
)
from registries.kinds import KINDS


def instance(image_name: str, registry_url: str = "") -> SimpleNamespace:
    return SimpleNamespace(image_name=image_name, registry_url=registry_url)


@pytest.mark.parametrize(
    ("image_name", "registry_url", "slug"),
    [
        ("myuser/myapp", "", "dockerhub"),
        ("busybox", "", "dockerhub"),
        ("docker.io/myuser/myapp", "", "dockerhub"),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app", "", "ecr"),
        ("public.ecr.aws/docker/library/busybox", "", "ecr-public"),
        ("ghcr.io/owner/app", "", "ghcr"),
        ("registry.gitlab.com/group/project/app", "", "gitlab"),
        ("quay.io/org/app", "", "quay"),
        ("myregistry.azurecr.io/team/app", "", "acr"),
        ("europe-west1-docker.pkg.dev/project/repo/app", "", "google"),
        ("127.0.0.1:5000/team/app", "127.0.0.1:5000", "generic"),
    ],
)
def test_it_takes_the_kind_from_the_image_names_host(image_name, registry_url, slug):
    assert registry_kind(instance(image_name, registry_url)).slug == slug


def test_it_falls_back_to_the_registry_url_when_the_image_name_does_not_parse():
    assert registry_kind(instance("Team/App", "https://ghcr.io/")).slug == "ghcr"
    assert registry_kind(instance("Team/App", "")).slug == "dockerhub"
    assert registry_kind(instance("Team/App", "user:pw@bad host")).slug == "dockerhub"


def test_badges_drop_the_parenthesised_detail():
    assert kind_short_label("Amazon ECR (private)") == "Amazon ECR"
    assert kind_short_label("Docker Registry v2 (Harbor, self-hosted, other)") == "Docker Registry v2"
    assert kind_short_label("Docker Hub") == "Docker Hub"


def test_every_kind_is_listed_with_an_example():
    kinds = registry_kinds()
    assert kinds == KINDS
    assert all(kind.example_image and kind.registry_url_rule for kind in kinds)


def test_an_expiry_is_soon_within_the_given_hours():
    now = timezone.now()
    assert expires_within(now + timedelta(minutes=30), 2)
    assert expires_within(now - timedelta(minutes=1), 2)
    assert not expires_within(now + timedelta(hours=5), 2)
    assert not expires_within(None, 2)


def test_a_page_has_an_active_pull_when_one_is_queued_or_running():
    rows = [SimpleNamespace(latest_pull_state=state) for state in ("succeeded", None, "failed")]
    assert not has_active_pull(rows)
    assert has_active_pull([*rows, SimpleNamespace(latest_pull_state="queued")])
    assert has_active_pull([SimpleNamespace(latest_pull_state="running")])
