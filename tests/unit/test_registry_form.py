"""The per-kind registry rules, posted to the real form view: field errors where the user looks."""

from __future__ import annotations

import pytest
from django.urls import reverse

from orchestrator.models import ContainerInstance

from .form_data import instance_form

pytestmark = pytest.mark.django_db

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def post(client, **fields):
    data = instance_form(**{"name": "app", "image_name": "team/app", "image_tag": "1.0", **fields})
    return client.post(reverse("instance-create"), data)


def errors(response) -> dict:
    assert response.status_code == 200, "expected the form back with errors"
    return {field: " ".join(messages) for field, messages in response.context["form"].errors.items()}


def test_ecr_wants_the_username_aws_in_capitals(operator_client):
    response = post(
        operator_client,
        image_name=f"{ECR}/team/app",
        registry_url=ECR,
        registry_username="aws",
        registry_password="x" * 20,
    )
    assert "AWS" in errors(response)["registry_username"]


def test_ecr_regions_must_agree_between_image_and_registry_url(operator_client):
    other = ECR.replace("eu-west-1", "us-east-1")
    response = post(
        operator_client,
        image_name=f"{ECR}/team/app",
        registry_url=other,
        registry_username="AWS",
        registry_password="x" * 20,
    )
    message = " ".join(errors(response).values())
    assert "eu-west-1" in message and "us-east-1" in message


def test_a_registry_url_with_credentials_is_refused_without_echoing_them(operator_client):
    response = post(
        operator_client,
        image_name="registry.example.com/team/app",
        registry_url="https://bob:S3cr3tPw@registry.example.com",
    )
    assert "registry_url" in errors(response)
    assert "S3cr3tPw" not in response.content.decode()


def test_a_registry_url_for_another_host_names_both(operator_client):
    response = post(operator_client, image_name="ghcr.io/team/app", registry_url="quay.io")
    message = errors(response)["registry_url"]
    assert "ghcr.io" in message and "quay.io" in message


def test_username_without_password_is_an_error(operator_client):
    response = post(operator_client, registry_username="bob")
    assert "registry_password" in errors(response) or "registry_username" in errors(response)


def test_a_docker_hub_alias_is_stored_blank(operator_client):
    response = post(
        operator_client, registry_url="https://index.docker.io/v1/", registry_username="bob", registry_password="tok"
    )
    assert response.status_code == 302
    assert ContainerInstance.objects.get().registry_url == ""


def test_a_tag_pasted_into_the_image_name_moves_to_the_tag_field(operator_client):
    response = post(operator_client, image_name="team/app:2.5", image_tag="")
    assert response.status_code == 302
    instance = ContainerInstance.objects.get()
    assert (instance.image_name, instance.image_tag) == ("team/app", "2.5")


def test_a_conflicting_tag_says_where_the_tag_goes(operator_client):
    response = post(operator_client, image_name="team/app:2.5", image_tag="3.0")
    assert "Image Tag" in errors(response)["image_name"]


def test_a_full_ecr_uri_in_the_image_name_is_decoded_server_side(operator_client):
    response = post(
        operator_client,
        image_name=f"https://{ECR}/team/app:1.4",
        image_tag="",
        registry_url="",
        registry_username="AWS",
        registry_password="x" * 20,
    )
    assert response.status_code == 302, errors(response)
    instance = ContainerInstance.objects.get()
    assert instance.image_name == f"{ECR}/team/app"
    assert instance.image_tag == "1.4"
    assert instance.registry_url == f"{ECR}/team/"


def test_generated_ecr_passwords_are_refused_for_other_registries(operator_client):
    response = post(operator_client, image_name="ghcr.io/team/app", aws_auth="chain")
    assert "ECR" in errors(response)["aws_auth"]


def test_access_keys_need_both_parts(operator_client):
    response = post(operator_client, image_name=f"{ECR}/team/app", registry_url=ECR, aws_auth="keys")
    found = errors(response)
    assert "aws_access_key_id" in found and "aws_secret_access_key" in found


def test_the_decode_endpoint_fills_an_ecr_form(operator_client):
    data = operator_client.get(reverse("registry-decode"), {"uri": f"docker pull {ECR}/team/app:1.4"}).json()
    assert data["image_name"] == f"{ECR}/team/app"
    assert data["image_tag"] == "1.4"
    assert data["registry_url"] == f"{ECR}/team/"
    assert data["registry_username"] == "AWS"
    assert data["kind"] == "ecr" and "AWS" in data["help"]
