"""The agent API's gateway endpoints: what the agent learns at start, its heartbeat and sweep, its instances
and the states of their containers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orchestrator.containers.report import EMPTY
from orchestrator.containers.spec import build_spec, spec_values
from orchestrator.models import ContainerInstance, ContainerState, Gateway, PullJob
from orchestrator.pulls import actions

from . import test_agent_api as base
from .test_agent_api import API, HOLDER, post, rows

# The shared fixtures (a module's fixtures are found by name, so they are bound here).
plant, other, sent = base.plant, base.other, base.sent


def test_the_gateway_tells_the_agent_its_name_queues_and_periods(plant, settings):
    settings.GATEWAY_HEARTBEAT_SECONDS = 15
    settings.PULL_PROGRESS_WRITE_INTERVAL = 0.25
    settings.PULL_STALE_AFTER_SECONDS = 120
    assert plant.client.get(f"{API}/gateway").json() == {
        "name": "plant-a",
        "api_version": 1,
        "heartbeat_seconds": 15,
        "pull_queue": "gw.plant-a",
        "control_queue": "gw.plant-a.control",
        "progress_interval": 0.25,
        "job_beat_seconds": 5.0,
        "stale_after_seconds": 120,
    }


# --- the heartbeat ---------------------------------------------------------------------------------------

FACTS = {
    "platform": "linux/amd64",
    "docker_version": "27.1.1",
    "storage_driver": "overlay2",
    "docker_root": "/var/lib/docker",
    "free_bytes": 10**11,
    "cpus": 8,
    "memory_bytes": 16 * 2**30,
    "containers_running": 3,
    "agent_version": "2",
    "concurrency": 8,
    "docker_host": "unix:///var/run/docker.sock",
}


def test_a_heartbeat_writes_the_known_facts_and_drops_the_others(plant):
    response = post(plant.client, f"{API}/heartbeat", {"facts": {**FACTS, "shoe_size": 44, "mood": "good"}})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is True and body["ignored_facts"] == ["mood", "shoe_size"]
    assert body["swept"] == {"requeued": 0, "interrupted": 0, "cancelled": 0, "dispatched": 0}
    gateway = Gateway.objects.get(name="plant-a")
    assert gateway.facts == FACTS and gateway.online


def test_a_daemon_that_does_not_answer_is_a_fact_too(plant):
    assert post(plant.client, f"{API}/heartbeat", {"facts": {"docker_error": "No daemon."}}).status_code == 200
    assert Gateway.objects.get(name="plant-a").facts == {"docker_error": "No daemon."}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"facts": []},
        {"facts": {}, "extra": 1},
        {"facts": {"cpus": "8"}},
        {"facts": {"cpus": -1}},
        {"facts": {"free_bytes": 2**64}},
        {"facts": {"platform": "x" * 65}},
        {"facts": {"docker_error": None}},
        {"facts": {"concurrency": 1.5}},
    ],
)
def test_a_heartbeat_with_bad_facts_is_400_and_records_nothing(plant, body):
    before = rows()
    response = post(plant.client, f"{API}/heartbeat", body)
    assert response.status_code == 400, response.content
    assert rows() == before


def test_the_heartbeat_sweeps_this_gateways_jobs_only(plant, other, settings, sent):
    settings.PULL_STALE_AFTER_SECONDS = 15
    theirs = PullJob.objects.create(instance=other.instance, reference="docker.io/team/other:latest")
    for job in (plant.job, theirs):
        assert actions.claim(job.pk, HOLDER)
        assert actions.begin_attempt(actions.Fence(job.pk, HOLDER), 1)
    PullJob.objects.update(heartbeat_at=timezone.now() - timedelta(seconds=30))
    # A queued job the broker lost long ago is sent again too.
    lost = PullJob.objects.create(
        instance=plant.instance, reference="docker.io/team/app:1", dispatched_at=timezone.now() - timedelta(hours=1)
    )
    body = post(plant.client, f"{API}/heartbeat", {"facts": {}}).json()
    assert body["swept"]["requeued"] == 1 and body["swept"]["dispatched"] >= 1
    mine, theirs = PullJob.objects.get(pk=plant.job.pk), PullJob.objects.get(pk=theirs.pk)
    assert mine.state == "queued" and mine.attempts[0]["outcome"] == "interrupted"
    assert theirs.state == "running" and theirs.worker == HOLDER
    assert {task.queue for task in sent} == {"gw.plant-a"}
    assert lost.pk in {task.args[0] for task in sent}


# --- instances -------------------------------------------------------------------------------------------


def test_the_instance_list_holds_this_gateways_instances_as_documents_without_secrets(plant, other):
    ContainerInstance.objects.filter(pk=plant.instance.pk).update(
        registry_username="me", registry_password="list-Pw-3321", aws_secret_access_key="list-Aws-3321"
    )
    ContainerInstance.objects.create(gateway=plant.gateway, name="db", image_name="postgres", image_tag="16")
    response = plant.client.get(f"{API}/instances")
    assert response.status_code == 200
    documents = response.json()["instances"]
    assert [document["name"] for document in documents] == ["db", "web"]
    web = documents[1]
    instance = ContainerInstance.objects.get(pk=plant.instance.pk)
    assert web == {
        "id": instance.pk,
        "name": "web",
        "enabled": True,
        "reference": "docker.io/team/app:1",
        "digest_pin": "",
        "spec": spec_values(instance),
        "settings_hash": build_spec(spec_values(instance), name="web").settings_hash("docker.io/team/app:1"),
        "spec_errors": None,
    }
    assert "list-Pw-3321" not in response.content.decode() and "list-Aws-3321" not in response.content.decode()
    assert plant.client.get(f"{API}/instances/{instance.pk}").json() == web


def test_an_instance_whose_settings_have_errors_has_no_settings_hash(plant):
    ContainerInstance.objects.filter(pk=plant.instance.pk).update(memory="lots", internal_ports="80")
    document = plant.client.get(f"{API}/instances/{plant.instance.pk}").json()
    assert document["settings_hash"] is None
    assert set(document["spec_errors"]) == {"memory", "external_ports"}


def test_the_instance_list_costs_the_same_queries_for_one_instance_or_many(plant):
    with CaptureQueriesContext(connection) as one:
        assert len(plant.client.get(f"{API}/instances").json()["instances"]) == 1
    for number in range(6):
        ContainerInstance.objects.create(gateway=plant.gateway, name=f"app-{number}", image_name="busybox")
    with CaptureQueriesContext(connection) as many:
        assert len(plant.client.get(f"{API}/instances").json()["instances"]) == 7
    assert len(one) == len(many) == 2  # the token's gateway, the instances


def test_an_instance_moved_to_another_gateway_is_404_for_the_old_one(plant, other):
    ContainerInstance.objects.filter(pk=plant.instance.pk).update(gateway=other.gateway, name="moved")
    assert plant.client.get(f"{API}/instances/{plant.instance.pk}").status_code == 404
    assert other.client.get(f"{API}/instances/{plant.instance.pk}").json()["name"] == "moved"


# --- container states ------------------------------------------------------------------------------------

RUNNING = {
    "exists": True,
    "container_id": "a" * 64,
    "state": "running",
    "exit_code": 0,
    "restart_count": 0,
    "started_at": "2025-03-04T02:45:00",
    "finished_at": "",
    "error": "",
    "image_digest": "sha256:" + "d" * 64,
    "settings_hash": "e" * 32,
    "problem": "",
}


def states(world, *reported):
    return post(world.client, f"{API}/containers", {"states": list(reported)})


def test_container_states_are_written_for_this_gateways_instances_only_and_only_when_changed(plant, other):
    body = states(
        plant,
        {"instance": plant.instance.pk, **RUNNING},
        {"instance": other.instance.pk, **RUNNING},
        {"instance": 987654, **RUNNING},
    ).json()
    assert body == {"written": 1, "unchanged": 0, "ignored": 2}
    row = ContainerState.objects.get()
    assert row.instance_id == plant.instance.pk and row.gateway.name == "plant-a" and row.state == "running"
    first_report = row.reported_at

    assert states(plant, {"instance": plant.instance.pk, **RUNNING}).json() == {
        "written": 0,
        "unchanged": 1,
        "ignored": 0,
    }
    assert ContainerState.objects.get().reported_at == first_report
    stopped = {**RUNNING, "state": "exited", "exit_code": 137}
    assert states(plant, {"instance": plant.instance.pk, **stopped}).json()["written"] == 1
    row = ContainerState.objects.get()
    assert (row.state, row.exit_code) == ("exited", 137) and row.reported_at > first_report


def test_a_state_with_fields_left_out_is_the_empty_state(plant):
    states(plant, {"instance": plant.instance.pk, "problem": "A stranger has the name."})
    row = ContainerState.objects.values(*EMPTY).get()
    assert row == {**EMPTY, "problem": "A stranger has the name."}


def test_the_last_report_of_an_instance_in_a_batch_wins(plant):
    body = states(
        plant, {"instance": plant.instance.pk, **RUNNING}, {"instance": plant.instance.pk, "exists": False}
    ).json()
    assert body["written"] == 1 and ContainerState.objects.get().exists is False


def test_states_of_instances_moved_away_are_dropped_as_the_full_pass_did(plant, other):
    states(plant, {"instance": plant.instance.pk, **RUNNING})
    ContainerInstance.objects.filter(pk=plant.instance.pk).update(gateway=other.gateway, name="moved")
    body = states(plant, {"instance": plant.instance.pk, **RUNNING}).json()
    assert body == {"written": 0, "unchanged": 0, "ignored": 1}
    assert not ContainerState.objects.exists()


def test_writing_states_costs_the_same_queries_for_one_instance_or_many(plant):
    more = [
        ContainerInstance.objects.create(gateway=plant.gateway, name=f"c{n}", image_name="busybox") for n in range(5)
    ]
    with CaptureQueriesContext(connection) as one:
        assert states(plant, {"instance": plant.instance.pk, **RUNNING}).json()["written"] == 1
    with CaptureQueriesContext(connection) as many:
        body = states(plant, *({"instance": instance.pk, **RUNNING} for instance in more)).json()
    assert body["written"] == 5
    assert len(one) == len(many), ([q["sql"] for q in one], [q["sql"] for q in many])


@pytest.mark.parametrize(
    "state",
    [
        {"exists": True},
        {"instance": "1"},
        {"instance": 1, "state": "r" * 17},
        {"instance": 1, "exit_code": 2**31},
        {"instance": 1, "restart_count": -1},
        {"instance": 1, "exists": "yes"},
        {"instance": 1, "colour": "blue"},
        {"instance": 1, "container_id": None},
    ],
)
def test_a_bad_state_refuses_the_whole_report(plant, state):
    state = {**state, "instance": plant.instance.pk} if state.get("instance") == 1 else state
    response = states(plant, {"instance": plant.instance.pk, **RUNNING}, state)
    assert response.status_code == 400, response.content
    assert "states[1]" in response.json()["error"]["message"]
    assert not ContainerState.objects.exists()


def test_a_report_has_at_most_500_states(plant):
    assert states(plant, *[{"instance": plant.instance.pk}] * 500).status_code == 200
    assert states(plant, *[{"instance": plant.instance.pk}] * 501).status_code == 400
    assert post(plant.client, f"{API}/containers", {}).status_code == 400
