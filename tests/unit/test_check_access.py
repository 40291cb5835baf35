"""Check access: one check for the button and the save, and one policy for what its failures mean."""

from __future__ import annotations

import pytest
from django.urls import reverse

from orchestrator.instances.access import refusal_field
from orchestrator.models import ContainerInstance

from .form_data import instance_form

pytestmark = pytest.mark.django_db

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def test_check_access_answers_even_when_saves_do_not_check(answering_agent, operator_client, settings):
    settings.CHECK_IMAGE_ON_SAVE = False
    response = operator_client.post(reverse("registry-check"), instance_form())
    assert response.status_code == 200, response.json()
    assert response.json()["error"]["code"] == "daemon_unreachable"


def test_a_temporary_aws_failure_saves_with_a_warning_as_a_daemon_failure_does(
    answering_agent, operator_client, monkeypatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", "http://127.0.0.1:9")
    data = instance_form(
        image_name=f"{ECR}/team/app",
        registry_url=ECR,
        aws_auth="keys",
        aws_access_key_id="AKIAEXAMPLEKEY",
        aws_secret_access_key="secret-x",
    )
    response = operator_client.post(reverse("instance-create"), data, follow=True)
    assert ContainerInstance.objects.filter(name="web").exists(), response.context["form"].errors
    assert "cannot be reached" in response.content.decode()


def test_a_definite_refusal_is_a_field_error_and_a_temporary_failure_is_not():
    assert refusal_field({"code": "auth_failed", "message": "wrong password"}) == "registry_password"
    assert refusal_field({"code": "auth_failed", "message": "bad keys", "field": "aws_access_key_id"}) == (
        "aws_access_key_id"
    )
    assert refusal_field({"code": "not_found", "message": "no such tag 1.2"}) == "image_tag"
    assert refusal_field({"code": "not_found", "message": "no such repository"}) == "image_name"
    for code in ("registry_unreachable", "daemon_unreachable", "rate_limited", "timeout", "unknown"):
        assert refusal_field({"code": code, "message": "later"}) is None
