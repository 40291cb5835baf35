"""Bad input at every entry point gets a clear message, never a 500, and is rendered escaped."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from orchestrator.models import ContainerInstance, PullJob

from .form_data import instance_form

pytestmark = pytest.mark.django_db

BASE = instance_form(image_name="team/app", image_tag="1.0")
TEXT_FIELDS = ["name", "image_name", "image_tag", "registry_url", "registry_username", "registry_password"]
PAYLOADS = {
    "nul": "abc\x00def",
    "control": "abc\x07\x1bdef",
    "long": "a" * 10_000,
    "script": "<script>alert('x')</script>",
    "newline": "abc\ndef",
}


@pytest.mark.parametrize("field", TEXT_FIELDS)
@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_every_text_field_refuses_bad_input_with_a_field_error(operator_client, field, payload):
    value = PAYLOADS[payload]
    response = operator_client.post(reverse("instance-create"), {**BASE, field: value})
    assert response.status_code == 200, f"{field}={payload!r} gave {response.status_code}"
    form = response.context["form"]
    assert form.errors, f"{field}={payload!r} was accepted"
    body = response.content.decode()
    assert "<script>alert" not in body
    assert not ContainerInstance.objects.exists()


@pytest.mark.parametrize("field", ["download_retries", "download_retry_interval", "download_timeout"])
@pytest.mark.parametrize("value", ["-1", "abc", "1e9", "99999999999999999999", ""])
def test_numbers_out_of_range_are_field_errors(operator_client, field, value):
    response = operator_client.post(reverse("instance-create"), {**BASE, field: value})
    assert response.status_code == 200
    assert field in response.context["form"].errors


def test_a_script_in_a_stored_value_is_rendered_escaped(operator_client):
    # The registry URL of a generic registry may hold little, but a name shown back must be escaped.
    instance = ContainerInstance.objects.create(name="x", image_name="team/app", image_tag="1.0")
    PullJob.objects.create(instance=instance, reference="x", message="<script>alert('m')</script>")
    job = PullJob.objects.get()
    body = operator_client.get(reverse("pull-detail", args=[job.pk])).content.decode()
    assert "<script>alert('m')" not in body
    assert "&lt;script&gt;" in body


@pytest.mark.parametrize(
    "query",
    ["uri=%00", "uri=%ff%fe%fd", "uri=" + "a" * 5000, "uri=%3Cscript%3E", "uri=", "uri=UPPER/Case:tag", "nothing=1"],
)
def test_the_decode_endpoint_answers_bad_input_with_400_json(operator_client, query):
    response = operator_client.get(reverse("registry-decode") + "?" + query)
    assert response.status_code == 400
    data = response.json()
    assert data["error"]["code"] == "invalid_reference"
    assert data["error"]["message"]
    # Quoting the input back is fine in JSON served as JSON and never sniffed as HTML (the page uses textContent).
    assert response["Content-Type"] == "application/json"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_check_endpoint_answers_bad_fields_with_400_json(operator_client):
    response = operator_client.post(reverse("registry-check"), {**BASE, "image_name": "Bad//Name"})
    assert response.status_code == 400
    assert "image_name" in response.json()["fields"]
    response = operator_client.post(reverse("registry-check"), {**BASE, "instance": "abc"})
    assert response.status_code == 400
    response = operator_client.post(reverse("registry-check"), {**BASE, "instance": "999"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "url_name", ["instance-detail", "instance-edit", "instance-delete", "pull-detail", "pull-json"]
)
def test_unknown_ids_are_404(operator_client, url_name):
    assert operator_client.get(reverse(url_name, args=[987654])).status_code == 404


def test_paths_that_are_not_ids_are_404(operator_client):
    assert operator_client.get("/instances/abc/").status_code == 404
    assert operator_client.get("/pulls/-1.json").status_code == 404


@pytest.mark.parametrize("name", ["", "a\x00b", "x" * 500, "no-such-instance"])
def test_manage_py_pull_refuses_bad_names_clearly(name):
    with pytest.raises(CommandError) as error:
        call_command("pull", name, stdout=io.StringIO())
    assert str(error.value)


def test_the_instance_list_search_survives_odd_queries(operator_client):
    for query in ["%00", "%ff", "a" * 5000, "<script>"]:
        response = operator_client.get(reverse("instance-list") + "?q=" + query + "&page=zzz&state=bogus")
        assert response.status_code == 200
