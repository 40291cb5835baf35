"""What an agent holds, on the real fleet: only its four variables; another gateway's token gets nothing; the web
may restart under a pull.

The fleet's agents run with the environment of ``Fleet.agent_env``: GATEWAY_TOKEN, CONSOLE_URL,
CELERY_BROKER_URL, DOCKER_HOST, an empty data folder and the tests' two intervals, and on the agent's own settings
(orchestrator/conf/agent.py: the dummy database backend, no encryption key). Any database query or decryption in
an agent would fail its pull, check or action, and show in its log.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.faults_tools import TcpProxy
from tests.stack import push_random_image
from tests.stack.procs import MARKER_ENV

from .fleet import _INHERITED, Fleet, Proc
from .orphans import OWNER_ENV
from .test_fleet import (
    MIB,
    A,
    B,
    agent_of,
    container,
    create,
    has_image,
    instance_form,
    wait_for_pull,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.fleet]

# The whole environment an agent of the fleet gets (Fleet.agent_env).
AGENT_VARIABLES = {"GATEWAY_TOKEN", "CONSOLE_URL", "CELERY_BROKER_URL", "DOCKER_HOST"}
TEST_VARIABLES = {"DATA_DIR", "GATEWAY_HEARTBEAT_SECONDS", "PULL_STALE_AFTER_SECONDS", "PYTHONUNBUFFERED"}
CONSOLE_ONLY = ("DATABASE_", "FIELD_ENCRYPTION_KEY", "DJANGO_SECRET_KEY", "DJANGO_SETTINGS_MODULE")
# What the agent's settings say when code asks for the database, or for a key to decrypt with.
NO_DATABASE = "settings.DATABASES is improperly configured"
NO_KEY = "FIELD_ENCRYPTION_KEY must hold"


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(entry.split("=", 1) for entry in raw.decode().split("\0") if "=" in entry)


def agent_log(fleet: Fleet, gateway: str) -> str:
    agent = fleet.gateways[gateway].agent
    assert agent is not None
    return agent.log_path.read_text(errors="replace")


def api(fleet: Fleet, token: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(
        method, f"{fleet.web_url}/agent/v1/{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10, **kwargs
    )


def instance_of(web, job_id: int) -> int:
    """The id of a pull's instance, from the pull page's breadcrumb."""
    found = re.search(r'<a href="/instances/(\d+)/">', web.get(f"/pulls/{job_id}/").text)
    assert found, f"no instance link on the page of pull {job_id}"
    return int(found[1])


# --- the acceptance of issue 16: an agent with its four variables does everything -------------------------


def test_an_agent_with_only_its_four_variables_pulls_checks_acts_and_beats(stack, fleet, web):
    agent = fleet.gateways[A].agent
    assert agent is not None and agent.pid is not None
    env = environ_of(agent.pid)
    extra = set(env) - AGENT_VARIABLES - TEST_VARIABLES - set(_INHERITED) - {MARKER_ENV, OWNER_ENV}
    assert not extra, f"the agent got more than its variables: {sorted(extra)}"
    assert set(env) >= AGENT_VARIABLES
    assert not [name for name in env if name.startswith(CONSOLE_ONLY)], sorted(env)
    data_dir = Path(env["DATA_DIR"])

    ids = web.gateway_ids()
    # Saved with the save-time check on: the web asks A's agent, which answers through the agent API.
    first = create(web, instance_form(stack, ids[A], "trust-a", stack.images["busybox"]))
    instance = instance_of(web, first)
    page = web.get(f"/instances/{instance}/").text
    assert "access works" in page, page[page.find("last-check") :][:600]

    job = wait_for_pull(fleet, web, first)
    assert job["state"] == "succeeded" and job["attempt"] == 1, job
    assert agent_of(A, job["attempts"][0]), job["attempts"]
    wait_until(lambda: web.pull(job["id"])["container_state"] == "running", 30, "the container to run")
    assert has_image(fleet, A, stack.images["busybox"])

    # Container actions and output: requests the agent takes and answers.
    assert web.post(f"/instances/{instance}/container/stop/", {}).status_code == 302
    wait_until(lambda: not container(fleet, A, "trust-a")["State"]["Running"], 30, "the container to stop")
    assert web.post(f"/instances/{instance}/container/start/", {}).status_code == 302
    wait_until(lambda: container(fleet, A, "trust-a")["State"]["Running"], 30, "the container to start")
    output = web.get(f"/instances/{instance}/container/output/")
    assert output.status_code == 200 and "no answer" not in output.text.lower(), output.text[:500]
    # Heartbeats: online, with the daemon's facts and the running container.
    listed = wait_until(lambda: (g := web.gateways()[A])["containers_running"] and g, 20, "A's next heartbeat")
    assert listed["online"] and listed["storage_driver"] == "vfs", listed

    # Nothing was ever stored on the gateway, and nothing tried to open a database or decrypt.
    assert [path.name for path in data_dir.rglob("*")] == []
    log = agent_log(fleet, A)
    assert NO_DATABASE not in log and NO_KEY not in log and "Traceback" not in log, log[-3000:]
    assert stack.registry_password not in log


# --- a. another gateway's token ----------------------------------------------------------------


def test_an_agent_on_another_gateways_queue_is_refused_and_the_job_completes_on_its_own(stack, fleet, web):
    ids = web.gateway_ids()
    # Only the thief listens on B's queues: B's own agent is stopped.
    fleet.gateways[B].agent.stop()
    # A's gateway box with A's token, consuming B's queues.
    thief = Proc(
        name="thief",
        argv=[sys.executable, "-m", "tests.fleet.hostile_agent", B],
        env=fleet.agent_env(fleet.gateways[A]),
        log_path=fleet.root / "logs" / "hostile.log",
    )
    thief.start()
    try:
        wait_until(lambda: " ready." in thief.output(), 60, "the thief to consume B's queue")
        # Saved and pulled (the save's check, if the console still counts B online, goes to B's control queue:
        # the thief cannot take it either, and the save goes on without its answer).
        job_id = create(web, instance_form(stack, ids[B], "trust-b", stack.images["busybox"]))
        instance = instance_of(web, job_id)
        refused = f"pull job {job_id}: delivery refused (not_found)"
        wait_until(lambda: refused in thief.output(), 30, "the thief's claim to be refused")
        # Straight at the API with A's token: B's job and instance are "no such row", with no secret in them.
        token = fleet.gateways[A].token
        for method, path, body in (
            ("POST", f"jobs/{job_id}/claim", {"holder": "thief"}),
            ("GET", f"jobs/{job_id}", None),
            ("GET", f"instances/{instance}", None),
            ("POST", f"jobs/{job_id}/events", {"holder": "thief", "events": [{"type": "beat"}]}),
        ):
            answer = api(fleet, token, method, path, json=body)
            assert answer.status_code == 404, (path, answer.status_code, answer.text)
            assert stack.registry_password not in answer.text and stack.registry_username not in answer.text
        waiting = web.pull(job_id)
        assert waiting["state"] == "queued" and waiting["attempt"] == 0 and waiting["attempts"] == [], waiting
    finally:
        thief.stop()
    thief_said = thief.output()
    assert stack.registry_password not in thief_said and NO_DATABASE not in thief_said
    # B's own agent comes back; the console's sweeper (on its heartbeat) sends the job again, and B pulls it.
    fleet.start_agent(B)
    fleet.wait_agent_ready(B)
    job = wait_for_pull(fleet, web, job_id, timeout=90)
    assert job["state"] == "succeeded" and job["attempt"] == 1, (job, fleet.logs())
    assert agent_of(B, job["attempts"][0]), job["attempts"]
    assert has_image(fleet, B, stack.images["busybox"])
    assert container(fleet, B, "trust-b") is not None and container(fleet, A, "trust-b") is None


# --- b. the web restarts under a pull ----------------------------------------------------------


def restart_web(fleet: Fleet, outage: float) -> float:
    """SIGKILL the web, wait ``outage`` seconds, start it again on the same port; return when it answers."""
    assert fleet.web is not None
    fleet.web.kill()
    time.sleep(outage)
    fleet.web.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{fleet.web_url}/accounts/login/", timeout=2).status_code == 200:
                return time.monotonic()
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the web did not come back:\n{fleet.web.tail()}")


def test_a_pull_goes_on_while_the_web_restarts_and_its_end_is_delivered(stack, fleet, web):
    ids = web.gateway_ids()
    slow = push_random_image(stack, "fleet/restart", "1", layers=2, layer_mb=3)
    with TcpProxy(stack.registry, rate=1 * MIB) as proxy:
        job_id = create(web, instance_form(stack, ids[A], "restart-a", slow, registry=proxy.address))
        wait_until(lambda: web.pull(job_id)["bytes_done"] > 0, 30, "A's agent to download")
        log_before = len(agent_log(fleet, A))
        down = time.monotonic()
        back = restart_web(fleet, outage=3)
        job = wait_for_pull(fleet, web, job_id, timeout=90)
    assert back - down >= 3
    assert job["state"] == "succeeded", (job, fleet.logs())
    # The same attempt, never interrupted: the agent kept the job through the outage and delivered its end.
    assert job["attempt"] == 1 and len(job["attempts"]) == 1, job["attempts"]
    assert job["attempts"][0]["outcome"] == "succeeded" and agent_of(A, job["attempts"][0])
    assert job["progress"] == 100 and job["container_state"] == "running", job
    said = agent_log(fleet, A)[log_before:]
    assert "progress not sent" in said or "console unreachable" in said, said[-3000:]
    assert web.gateways()[A]["online"]
