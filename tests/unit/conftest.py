"""Unit-test settings shared by the files in tests/unit."""

from __future__ import annotations

import os
import threading
import time
from types import SimpleNamespace

import pytest
from hypothesis import settings

# Property tests: 200 examples by default keeps `pytest tests/unit` fast; CI (HYPOTHESIS_PROFILE=ci, set
# by `make test`) searches ten times harder. No deadline, so a loaded CI machine cannot fail a test on time alone.
settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile("ci", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def agent_console(transactional_db, live_server, monkeypatch):
    """This process as an agent of `local`: CONSOLE_URL is a live server on this test's database, with a token."""
    from django.conf import settings as django_settings

    from orchestrator.agent import client
    from orchestrator.gateways.actions import rotate_token

    monkeypatch.setattr(django_settings, "CONSOLE_URL", live_server.url)
    monkeypatch.setenv("GATEWAY_TOKEN", rotate_token("local"))
    monkeypatch.setattr(client, "_console", None)
    return live_server


@pytest.fixture
def answering_agent(agent_console, monkeypatch):
    """The gateway `local` online, and its agent's control code answering each request the web sends.

    Only the broker is left out: a sent control task runs the agent's own ``run_request`` in a thread, as
    the agent's consumer would, through the agent API of a live server on this test's database. The agent
    has no daemon here (DOCKER_HOST points at nothing), so what touches Docker answers daemon_unreachable.
    ``agent.delay`` holds each answer back that many seconds; ``agent.sent`` lists what was sent.
    """
    from celery import current_app
    from django.conf import settings as django_settings
    from django.utils import timezone

    from orchestrator.control.ask import CONTROL_TASK
    from orchestrator.control.consumer import run_request
    from orchestrator.models import Gateway

    monkeypatch.setattr(django_settings, "DOCKER_HOST", "unix:///nonexistent/docker.sock")
    Gateway.objects.filter(name="local").update(last_seen=timezone.now())
    agent = SimpleNamespace(delay=0.0, sent=[], threads=[])

    def send_task(name, args, queue, retry=True, countdown=None, time_limit=None):
        agent.sent.append((name, args, queue))
        if name != CONTROL_TASK:
            return

        def answer():
            time.sleep(agent.delay)
            run_request(args[0])

        thread = threading.Thread(target=answer, daemon=True)
        agent.threads.append(thread)
        thread.start()

    monkeypatch.setattr(current_app, "send_task", send_task)
    yield agent
    for thread in agent.threads:
        thread.join(timeout=30)
