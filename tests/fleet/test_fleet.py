"""Gateways, on the real fleet: three dockerds, three agents, PostgreSQL, one Redis, the web over HTTP.

Every instance is made through the web's form (the web has no Docker daemon),
every state is read back from the web's JSON and pages, and every image and
container is looked for through each daemon's own Engine API.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path

import docker
import pytest
from django.test import override_settings

from orchestrator.containers.daemon import LABEL_INSTANCE
from orchestrator.models.gateways import offline_after
from tests.e2e.faults_tools import TcpProxy
from tests.stack import push_random_image

from .fleet import HEARTBEAT_SECONDS, NOWHERE, Fleet
from .web import WebClient

pytestmark = [pytest.mark.e2e, pytest.mark.fleet]

A, B, C = "fleet-a", "fleet-b", "fleet-c"
MIB = 1024 * 1024
# Keeps running until stopped, and exits at once on SIGTERM.
KEEP_RUNNING = "sh,-c,trap 'exit 0' TERM; while true; do sleep 1; done"


# --- helpers ------------------------------------------------------------------------------


def wait_until(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def instance_form(stack, gateway_id: int, name: str, reference: str, registry: str | None = None, **overrides) -> dict:
    """The instance form as an operator fills it in for an image of the stack's password registry."""
    registry = registry or stack.registry
    image, tag = reference.rsplit(":", 1)
    if registry != stack.registry:  # through a proxy: the same registry under another address
        image = image.replace(stack.registry, registry, 1)
    data = {
        "gateway": gateway_id,
        "name": name,
        "enabled": "on",
        "image_name": image,
        "image_tag": tag,
        "registry_url": registry,
        "registry_username": stack.registry_username,
        "registry_password": stack.registry_password,
        "download_retries": 3,
        "download_retry_interval": 500,
        "download_timeout": 120,
        "network_mode": "none",
        "entrypoint": KEEP_RUNNING,
        "logger_type": "DEFAULT",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def create(web: WebClient, data: dict) -> int:
    """Save the form; return the id of the pull it queued (an enabled instance) or of the instance."""
    response = web.post("/instances/new/", data)
    assert response.status_code == 302, f"the form was refused: {form_errors(response.text)}"
    found = re.fullmatch(r"/(pulls|instances)/(\d+)/", response.headers["Location"])
    assert found, response.headers["Location"]
    return int(found[2])


def pull_now(web: WebClient, instance_id: int) -> int:
    """The instance page's Pull button; returns the pull's id."""
    response = web.post(f"/instances/{instance_id}/pull/", {})
    assert response.status_code == 302, response.text[:500]
    found = re.fullmatch(r"/pulls/(\d+)/", response.headers["Location"])
    assert found, response.headers["Location"]
    return int(found[1])


def form_errors(page: str) -> list[str]:
    return re.findall(r'class="invalid-feedback[^"]*"[^>]*>(.*?)</', page, re.S) or [page[:1500]]


def wait_for_pull(fleet: Fleet, web: WebClient, job_id: int, timeout: float = 90, sample=None) -> dict:
    """Poll the pull's JSON until it ends; ``sample`` sees every answer."""
    deadline = time.monotonic() + timeout
    data: dict = {}
    while time.monotonic() < deadline:
        data = web.pull(job_id)
        if sample is not None:
            sample(data)
        if data["state"] not in ("queued", "running"):
            return data
        time.sleep(0.2)
    raise AssertionError(f"pull {job_id} did not end in {timeout} s: {data}\n{fleet.logs()}")


def has_image(fleet: Fleet, gateway: str, reference: str) -> bool:
    api = fleet.gateways[gateway].api()
    try:
        api.inspect_image(reference)
        return True
    except docker.errors.ImageNotFound:
        return False
    finally:
        api.close()


def container(fleet: Fleet, gateway: str, name: str) -> dict | None:
    api = fleet.gateways[gateway].api()
    try:
        return api.inspect_container(name)
    except docker.errors.NotFound:
        return None
    finally:
        api.close()


def console_containers(fleet: Fleet, gateway: str) -> list[str]:
    """Names of the containers the console made on this gateway's daemon."""
    api = fleet.gateways[gateway].api()
    try:
        return sorted(c["Names"][0].lstrip("/") for c in api.containers(all=True, filters={"label": LABEL_INSTANCE}))
    finally:
        api.close()


def agent_of(gateway: str, attempt: dict) -> bool:
    """The attempt ran in that gateway's agent (manage.py agent names its worker agent@<gateway>.<host>)."""
    return f"agent@{gateway}." in (attempt.get("worker") or "")


def when(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def gateways_online(web: WebClient) -> str:
    """What /healthz should say about the gateways, counted from /gateways.json."""
    listed = web.gateways().values()
    return f"{sum(g['online'] for g in listed)} of {len(listed)} gateways online"


def offline_seconds() -> float:
    """How long a silent gateway still counts as online, by the console's own rule for the fleet's heartbeat."""
    with override_settings(GATEWAY_HEARTBEAT_SECONDS=HEARTBEAT_SECONDS):
        return offline_after().total_seconds()


# --- a. each gateway's pulls and containers stay on its own daemon --------------------------


def test_pulls_and_containers_land_only_on_their_own_gateways_daemon(stack, fleet, web):
    ids = web.gateway_ids()
    assert {A, B, C} <= set(ids), ids
    # The console runs on PostgreSQL and Redis, and its web process has no Docker daemon to talk to.
    health = web.json("/healthz")["checks"]
    assert health["database"]["ok"] and health["database"]["detail"] == "postgresql", health
    assert health["broker"]["ok"] and health["broker"]["detail"] == "redis", health
    assert health["gateways"]["detail"] == gateways_online(web), health
    assert fleet.web.env["DOCKER_HOST"] == NOWHERE and not Path(NOWHERE.removeprefix("unix://")).exists()
    solo_c = push_random_image(stack, "fleet/solo-c", "1", layers=1, layer_mb=1)
    busybox = stack.images["busybox"]
    job_a = create(web, instance_form(stack, ids[A], "solo-a", busybox))
    job_c = create(web, instance_form(stack, ids[C], "solo-c", solo_c))

    pull_a = wait_for_pull(fleet, web, job_a)
    pull_c = wait_for_pull(fleet, web, job_c)
    for pull, gateway in ((pull_a, A), (pull_c, C)):
        assert pull["state"] == "succeeded", (pull, fleet.logs())
        assert pull["gateway"] == gateway
        assert pull["digest"].startswith("sha256:")
        assert pull["attempt"] == 1 and agent_of(gateway, pull["attempts"][0]), pull["attempts"]
    # The container phase follows the pull on the same gateway.
    wait_until(lambda: web.pull(job_a)["container_state"] == "running", 30, "solo-a's container to run")
    wait_until(lambda: web.pull(job_c)["container_state"] == "running", 30, "solo-c's container to run")

    # Each image is on its own gateway's daemon, and on no other.
    assert has_image(fleet, A, busybox) and not has_image(fleet, B, busybox) and not has_image(fleet, C, busybox)
    assert has_image(fleet, C, solo_c) and not has_image(fleet, A, solo_c) and not has_image(fleet, B, solo_c)
    # Each container too: made by the console (its label), from that image, running, only there.
    made_a, made_c = container(fleet, A, "solo-a"), container(fleet, C, "solo-c")
    assert made_a and made_a["State"]["Running"] and made_a["Config"]["Image"] == busybox
    assert made_c and made_c["State"]["Running"] and made_c["Config"]["Image"] == solo_c
    assert made_a["Id"] == web.pull(job_a)["container_id"]
    assert made_c["Id"] == web.pull(job_c)["container_id"]
    assert LABEL_INSTANCE in made_a["Config"]["Labels"] and LABEL_INSTANCE in made_c["Config"]["Labels"]
    assert container(fleet, B, "solo-a") is None and container(fleet, C, "solo-a") is None
    assert container(fleet, A, "solo-c") is None and container(fleet, B, "solo-c") is None
    assert "solo-a" not in console_containers(fleet, B) and "solo-c" not in console_containers(fleet, B)
    # The gateways' JSON agrees: each instance counted where it is, and each agent's next heartbeat
    # reports the running containers of its own daemon (B's has none).
    listed = wait_until(
        lambda: (g := web.gateways())[A]["containers_running"] and g[C]["containers_running"] and g,
        3 * HEARTBEAT_SECONDS + 5,
        "the heartbeats to report the new containers",
    )
    assert listed[B]["containers_running"] == 0, listed[B]
    assert listed[A]["instances"] >= 1 and listed[C]["instances"] >= 1
    assert {listed[name]["storage_driver"] for name in (A, B, C)} == {"vfs"}, listed


def test_two_gateways_pull_the_same_image_independently(stack, fleet, web):
    ids = web.gateway_ids()
    layers = stack.images["layers"]  # busybox plus three 8 MiB random layers
    # The same instance name on two gateways: names are unique per gateway.
    job_a = create(web, instance_form(stack, ids[A], "same", layers))
    job_b = create(web, instance_form(stack, ids[B], "same", layers))

    pull_a = wait_for_pull(fleet, web, job_a)
    pull_b = wait_for_pull(fleet, web, job_b)
    assert pull_a["state"] == "succeeded", (pull_a, fleet.logs())
    assert pull_b["state"] == "succeeded", (pull_b, fleet.logs())
    assert pull_a["digest"] == pull_b["digest"]
    assert agent_of(A, pull_a["attempts"][-1]) and agent_of(B, pull_b["attempts"][-1])
    # Each daemon downloaded the three random layers itself: nothing is shared between gateways.
    for pull in (pull_a, pull_b):
        assert pull["bytes_done"] >= 3 * 8 * MIB, pull
        assert pull["layers_done"] == pull["layers_total"], pull
    assert has_image(fleet, A, layers) and has_image(fleet, B, layers)
    assert not has_image(fleet, C, layers)
    wait_until(lambda: web.pull(job_a)["container_state"] == "running", 30, "A's container 'same' to run")
    wait_until(lambda: web.pull(job_b)["container_state"] == "running", 30, "B's container 'same' to run")
    on_a, on_b = container(fleet, A, "same"), container(fleet, B, "same")
    assert on_a and on_b and on_a["Id"] != on_b["Id"]
    assert on_a["Id"] == web.pull(job_a)["container_id"] and on_b["Id"] == web.pull(job_b)["container_id"]
    assert container(fleet, C, "same") is None


# --- b. an agent killed mid-pull --------------------------------------------------------------


def test_an_agent_killed_mid_pull_leaves_its_pull_waiting_and_finishes_it_when_back(stack, fleet, web):
    ids = web.gateway_ids()
    slow = push_random_image(stack, "fleet/slow", "1", layers=2, layer_mb=3)
    samples: dict[str, list[dict]] = {A: [], B: [], C: []}
    with TcpProxy(stack.registry, rate=1.5 * MIB) as shared, TcpProxy(stack.registry, rate=256 * 1024) as trickle:
        jobs = {}
        for gateway, proxy in ((A, shared), (B, trickle), (C, shared)):
            instance = create(
                web,
                instance_form(stack, ids[gateway], f"slow-{gateway}", slow, registry=proxy.address, enabled=None),
            )
            jobs[gateway] = pull_now(web, instance)

        def look(gateway: str) -> dict:
            data = web.pull(jobs[gateway])
            samples[gateway].append(data)
            return data

        wait_until(
            lambda: look(B)["state"] == "running" and samples[B][-1]["bytes_done"] > 0, 30, "B's agent to download"
        )
        held_by = samples[B][-1]["attempts"][-1]["worker"]
        assert agent_of(B, samples[B][-1]["attempts"][-1]), held_by
        killed = fleet.kill_agent(B)
        killed_at = time.time()
        # The daemon drops a pull whose client is gone: nothing downloads for a dead agent.
        assert trickle.wait_idle(15), f"{trickle.active} connections still open after the kill"

        # While B's agent is away: A's and C's pulls finish, B's waits (never failed), and its page says why.
        def others_done_and_b_lost() -> bool:
            a, b, c = look(A), look(B), look(C)
            assert b["state"] in ("queued", "running"), b
            return a["state"] == c["state"] == "succeeded" and b["agent_lost"]

        wait_until(others_done_and_b_lost, 60, "A and C to finish and B to show its agent lost")
        away = time.monotonic() - killed
        a, b, c = samples[A][-1], samples[B][-1], samples[C][-1]
        for done, gateway in ((a, A), (c, C)):
            assert done["error"] is None and done["attempt"] == 1 and agent_of(gateway, done["attempts"][0])
            assert when(done["finished_at"]) > killed_at, "finished before the kill: the test proved nothing"
        assert b["state"] == "running" and b["attempt"] == 1 and b["error"] is None, b
        assert b["gateway_note"] and f"agent of gateway {B} stopped reporting" in b["gateway_note"], b
        assert not has_image(fleet, B, slow.replace(stack.registry, trickle.address, 1))
        assert web.gateways()[B]["online"] is False

        # Back: a new process with the same token. Its sweeper releases the stale attempt, and it pulls again.
        trickle.rate = None
        assert fleet.gateways[B].agent.env["GATEWAY_TOKEN"] == fleet.gateways[B].token
        fleet.start_agent(B)
        fleet.wait_agent_ready(B)
        b = wait_for_pull(fleet, web, jobs[B], timeout=60, sample=samples[B].append)

    assert away >= offline_seconds() - HEARTBEAT_SECONDS, away
    assert b["state"] == "succeeded", (b, fleet.logs())
    assert b["error"] is None and b["agent_lost"] is False
    assert 2 <= b["attempt"] <= 4, b["attempts"]  # within download_retries=3
    first, last = b["attempts"][0], b["attempts"][-1]
    assert first["outcome"] == "interrupted" and first["worker"] == held_by, first
    assert "no heartbeat" in first["message"]
    assert last["outcome"] == "succeeded" and agent_of(B, last) and last["worker"] != held_by, last
    states = [s["state"] for gateway in samples for s in samples[gateway]]
    assert "failed" not in states, states
    # Each image where it was pulled: B's now too.
    for gateway, proxy in ((A, shared), (B, trickle), (C, shared)):
        assert has_image(fleet, gateway, slow.replace(stack.registry, proxy.address, 1)), gateway


# --- c. heartbeats stop -------------------------------------------------------------------------


def test_a_gateway_whose_heartbeats_stop_shows_offline_and_its_pull_says_agent_lost(stack, fleet, web):
    ids = web.gateway_ids()
    limit = offline_seconds()  # two beats missed and a margin: 9 s with the fleet's 2 s heartbeat
    wait_until(lambda: all(g["online"] for n, g in web.gateways().items() if n in (A, B, C)), 20, "all online")
    # Saved while C's agent is there (a save may ask the gateway's agent to check the image), pulled after.
    instance = create(web, instance_form(stack, ids[C], "late-c", stack.images["busybox"], enabled=None))
    killed = fleet.kill_agent(C)
    killed_at = time.time()
    # The pull now waits in C's queue: nobody is there to take it.
    job = pull_now(web, instance)
    fresh = web.pull(job)
    assert fresh["state"] == "queued" and fresh["gateway"] == C
    seen_online_at = []

    def offline():
        listed = web.gateways()
        if listed[C]["online"]:
            seen_online_at.append(time.monotonic())
            return None
        return listed

    listed = wait_until(offline, limit + 10, f"{C} to show offline", interval=0.1)
    went_offline = time.monotonic() - killed
    last_seen = when(listed[C]["last_seen"])
    assert last_seen <= killed_at + 0.5, "a beat after the kill"
    # Offline once the last beat is older than offline_after(), and not before.
    assert went_offline <= limit + 2.5, went_offline
    assert time.time() - last_seen >= limit - 0.5
    assert seen_online_at, "it was never seen online after the kill"
    assert listed[A]["online"] and listed[B]["online"], listed
    assert listed[C]["queued"] >= 1
    health = web.json("/healthz")["checks"]["gateways"]
    assert health["ok"] and health["detail"] == gateways_online(web), health  # A and B still report

    # The pages say the same: its row offline, the others online; the filter finds it alone.
    page = web.get("/gateways/").text
    rows = dict(re.findall(r'<tr data-gateway="([^"]+)">(.*?)</tr>', page, re.S))
    assert ">offline<" in rows[C] and "last seen" in rows[C], rows[C]
    assert ">online<" in rows[A] and ">online<" in rows[B]
    offline_page = web.get("/gateways/?state=offline").text
    assert f'data-gateway="{C}"' in offline_page
    assert f'data-gateway="{A}"' not in offline_page and f'data-gateway="{B}"' not in offline_page
    online_page = web.get("/gateways/?state=online").text
    assert f'data-gateway="{C}"' not in online_page and f'data-gateway="{A}"' in online_page
    # And the pull's JSON: its agent is lost, it waits for the gateway.
    lost = web.pull(job)
    assert fresh["agent_lost"] is False
    assert lost["state"] == "queued" and lost["agent_lost"] is True, lost
    assert f"waiting for gateway {C}" in lost["gateway_note"], lost
    assert f"waiting for gateway {C}" in web.get(f"/pulls/{job}/").text

    # The agent comes back: online again at its first beat, and the waiting pull runs.
    fleet.start_agent(C)
    fleet.wait_agent_ready(C)
    wait_until(lambda: web.gateways()[C]["online"], 2 * HEARTBEAT_SECONDS + 5, f"{C} to be online again")
    done = wait_for_pull(fleet, web, job, timeout=60)
    assert done["state"] == "succeeded" and done["agent_lost"] is False, (done, fleet.logs())
    assert done["attempt"] == 1 and agent_of(C, done["attempts"][0])
    assert done["container_state"] == "pulled" and container(fleet, C, "late-c") is None  # disabled: no container
    assert has_image(fleet, C, stack.images["busybox"])
