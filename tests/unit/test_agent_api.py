"""The agent API (/agent/v1/): who may call it, and that every endpoint keeps to the caller's gateway.

For every endpoint: no token, another scheme, a malformed token, a rotated one, and a valid token of another
gateway are refused with no row changed. Then the plumbing shared by all: bodies too large, not JSON, values
JSON allows and databases refuse, wrong methods, unknown URLs, no cookies. The endpoints' own behaviour is in
test_agent_api_jobs.py, test_agent_api_gateway.py and test_agent_api_control.py, which use these fixtures.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from django.test import Client

from orchestrator.gateways import actions as gateways
from orchestrator.models import ContainerInstance, ContainerState, ControlRequest, EcrTokenCache, Gateway, PullJob

API = "/agent/v1"
HOLDER = "agent@plant-a pid 7 on box/4026531836 #abc123"


# --- fixtures shared by the test_agent_api*.py files ------------------------------------------------------


@pytest.fixture
def sent(monkeypatch):
    """The tasks the console sends (the broker itself is tested end to end)."""
    calls = []

    def send_task(name, args=None, queue=None, countdown=None, time_limit=None, retry=True, **kwargs):
        calls.append(SimpleNamespace(name=name, args=args, queue=queue, countdown=countdown))

    monkeypatch.setattr("celery.current_app.send_task", send_task)
    return calls


def agent_client(token: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def post(client: Client, path: str, data=None, **extra):
    body = data if isinstance(data, str | bytes) else json.dumps({} if data is None else data)
    return client.post(path, body, content_type="application/json", **extra)


def make_gateway(name: str) -> SimpleNamespace:
    gateway, token = gateways.add_gateway(name)
    return SimpleNamespace(gateway=gateway, token=token, client=agent_client(token))


@pytest.fixture
def plant(db, sent):
    """Gateway plant-a with an instance, a queued job, a pending and a taken control request."""
    world = make_gateway("plant-a")
    world.instance = ContainerInstance.objects.create(
        gateway=world.gateway, name="web", image_name="team/app", image_tag="1", download_retries=2
    )
    world.job = PullJob.objects.create(
        instance=world.instance, reference="docker.io/team/app:1", download_retries=2, message="Waiting for a worker"
    )
    world.request = ControlRequest.objects.create(gateway=world.gateway, instance=world.instance, kind="stop")
    world.taken = ControlRequest.objects.create(
        gateway=world.gateway, instance=world.instance, kind="start", state=ControlRequest.State.TAKEN
    )
    return world


@pytest.fixture
def other(db):
    """Gateway plant-b, with an instance of its own: its token is valid, just not for plant-a's rows."""
    world = make_gateway("plant-b")
    world.instance = ContainerInstance.objects.create(gateway=world.gateway, name="web", image_name="team/other")
    return world


def rows(*, without_gateway: str | None = None) -> dict:
    """Every row an agent could change, to compare before and after."""
    models = (Gateway, ContainerInstance, PullJob, ContainerState, ControlRequest, EcrTokenCache)
    snapshot = {model.__name__: list(model.objects.order_by("pk").values()) for model in models}
    if without_gateway:
        snapshot["Gateway"] = [row for row in snapshot["Gateway"] if row["name"] != without_gateway]
    return snapshot


# --- every endpoint: the token, and the gateway it names ---------------------------------------------------

# name -> (method, path from the world, body from the world)
ENDPOINTS = {
    "gateway": ("GET", lambda w: f"{API}/gateway", None),
    "heartbeat": ("POST", lambda w: f"{API}/heartbeat", lambda w: {"facts": {"platform": "linux/amd64"}}),
    "claim": ("POST", lambda w: f"{API}/jobs/{w.job.pk}/claim", lambda w: {"holder": HOLDER}),
    "events": (
        "POST",
        lambda w: f"{API}/jobs/{w.job.pk}/events",
        lambda w: {"holder": HOLDER, "events": [{"type": "beat"}]},
    ),
    "job": ("GET", lambda w: f"{API}/jobs/{w.job.pk}?holder=x", None),
    "instances": ("GET", lambda w: f"{API}/instances", None),
    "instance": ("GET", lambda w: f"{API}/instances/{w.instance.pk}", None),
    "containers": (
        "POST",
        lambda w: f"{API}/containers",
        lambda w: {"states": [{"instance": w.instance.pk, "exists": True}]},
    ),
    "take": ("POST", lambda w: f"{API}/control/{w.request.pk}/take", lambda w: {}),
    "answer": ("POST", lambda w: f"{API}/control/{w.taken.pk}/answer", lambda w: {"answer": {"message": "done"}}),
}
# The endpoints that name one row of plant-a: another gateway gets 404 for them.
NAMING_A_ROW = ("claim", "events", "job", "instance", "take", "answer")


def call(client: Client, name: str, world, **extra):
    method, path, body = ENDPOINTS[name]
    if method == "GET":
        return client.get(path(world), **extra)
    return post(client, path(world), body(world), **extra)


@pytest.mark.parametrize("name", ENDPOINTS)
@pytest.mark.parametrize(
    "header",
    [None, "Basic dXNlcjpwYXNz", "Token gwt_whatever", "Bearer", "Bearer ", "Bearer not-a-token"],
    ids=["none", "basic", "other-scheme", "bearer-alone", "bearer-blank", "malformed"],
)
def test_a_request_without_a_valid_token_is_refused_and_changes_nothing(plant, name, header):
    before = rows()
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = call(Client(), name, plant, **extra)
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert rows() == before


@pytest.mark.parametrize("name", ENDPOINTS)
def test_unknown_malformed_and_rotated_tokens_get_one_same_answer(plant, name):
    old = plant.token
    new = gateways.rotate_token("plant-a")
    before = rows()
    answers = []
    for token in (old, "gwt_" + "A" * 43, "gwt_short", old + "x", old.upper()):
        response = call(agent_client(token), name, plant)
        assert response.status_code == 401
        assert token not in response.content.decode() and token not in str(response.headers)
        answers.append(response.content)
    assert len(set(answers)) == 1  # never which part was wrong
    assert rows() == before
    assert call(agent_client(new), name, plant).status_code < 400


@pytest.mark.parametrize("name", NAMING_A_ROW)
def test_another_gateways_token_gets_404_for_a_row_of_plant_a_and_changes_nothing(plant, other, name):
    before = rows()
    response = call(other.client, name, plant)
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"
    assert rows() == before


@pytest.mark.parametrize("name", NAMING_A_ROW)
def test_a_foreign_row_and_a_missing_one_look_the_same(plant, other, name):
    foreign = call(other.client, name, plant)
    PullJob.objects.filter(pk=plant.job.pk).delete()
    ControlRequest.objects.all().delete()
    ContainerInstance.objects.filter(pk=plant.instance.pk).delete()
    missing = call(plant.client, name, plant)
    assert missing.status_code == foreign.status_code == 404
    assert missing.json() == foreign.json()


@pytest.mark.parametrize("name", ["gateway", "instances", "containers", "heartbeat"])
def test_the_endpoints_of_the_callers_own_gateway_show_and_change_nothing_of_another(plant, other, name):
    before = rows(without_gateway="plant-b")
    response = call(other.client, name, plant)
    assert response.status_code == 200, response.content
    assert rows(without_gateway="plant-b") == before
    text = response.content.decode()
    assert "plant-a" not in text and "team/app" not in text


def test_the_scheme_is_case_insensitive_and_the_token_may_have_spaces_around(plant):
    client = Client(HTTP_AUTHORIZATION=f"bearer   {plant.token}  ")
    assert client.get(f"{API}/gateway").json()["name"] == "plant-a"


def test_a_session_cookie_is_no_credential_and_no_cookie_is_set(plant, operator_client):
    assert operator_client.get(f"{API}/gateway").status_code == 401
    response = plant.client.get(f"{API}/gateway")
    assert response.status_code == 200
    assert not response.cookies
    assert "no-cache" in response["Cache-Control"] and "no-store" in response["Cache-Control"]


def test_a_post_needs_no_csrf_token(plant):
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {plant.token}")
    assert post(client, f"{API}/heartbeat", {"facts": {}}).status_code == 200


# --- the plumbing every endpoint shares ---------------------------------------------------------------------


def test_a_body_over_one_mebibyte_is_refused_with_413_before_it_is_read(plant):
    before = rows()
    big = json.dumps({"states": [{"instance": plant.instance.pk, "error": "x" * 1024 * 1024}]})
    response = post(plant.client, f"{API}/containers", big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    events = json.dumps({"holder": HOLDER, "events": [{"type": "beat"}], "pad": "x" * (1024 * 1024)})
    assert post(plant.client, f"{API}/jobs/{plant.job.pk}/events", events).status_code == 413
    assert rows() == before


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{",
        b"[1, 2]",
        b'"a string"',
        b"\xff\xfe\xfa",
        b'{"states": [{"instance": NaN}]}',
        b'{"states": [], "x": Infinity}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=["text", "truncated", "array", "string", "bad-utf8", "nan", "infinity", "deep"],
)
def test_a_body_that_is_not_a_json_object_is_400(plant, body):
    before = rows()
    response = post(plant.client, f"{API}/containers", body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_json"
    assert rows() == before


@pytest.mark.parametrize(
    "text",
    ["nul \u0000 inside", "lone \ud800 surrogate"],
    ids=["nul", "surrogate"],
)
def test_text_a_database_cannot_store_is_400_not_500(plant, text):
    body = json.dumps({"states": [{"instance": plant.instance.pk, "error": text}]})
    response = post(plant.client, f"{API}/containers", body)
    assert response.status_code == 400
    assert "states[0].error" in response.json()["error"]["message"]
    assert not ContainerState.objects.exists()


def test_a_wrong_method_is_405_in_json_and_unknown_urls_are_json_404(plant):
    response = plant.client.get(f"{API}/heartbeat")
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"
    response = post(plant.client, f"{API}/gateway")
    assert response.status_code == 405 and response["Allow"] == "GET"
    for path in ("/nope", "/jobs/abc/claim", "/control/not-a-uuid/take", "/jobs/1/claim/"):
        response = plant.client.get(API + path)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", path


def test_ids_too_large_for_a_column_are_404_not_500(plant):
    for path in (f"/jobs/{10**30}", f"/jobs/{2**63}/claim", f"/instances/{10**19}"):
        response = plant.client.get(API + path)
        assert response.status_code == 404, path
    response = post(plant.client, f"{API}/containers", {"states": [{"instance": 2**63}]})
    assert response.status_code == 400


def test_a_validation_error_names_the_field_and_never_repeats_its_value(plant):
    secret = "s3cr3t-value-" + "z" * 300
    response = post(plant.client, f"{API}/jobs/{plant.job.pk}/claim", {"holder": secret})
    assert response.status_code == 400
    assert "body.holder" in response.json()["error"]["message"]
    assert secret[:12] not in response.content.decode()
