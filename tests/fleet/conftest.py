"""The fleet: a console on PostgreSQL with three gateways, each a sandboxed dockerd and its own agent.

Started once per test module (tests/fleet/fleet.py says what runs); the images
come from the session stack's password registry (tests/conftest.py ``stack``).
"""

from __future__ import annotations

import time

import pytest

from .fleet import Fleet, start_fleet
from .web import WebClient


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "fleet: the three-gateway fleet on PostgreSQL (tests/fleet)")


@pytest.fixture(scope="module")
def fleet(stack, tmp_path_factory):
    started = time.monotonic()
    running = start_fleet(tmp_path_factory.mktemp("fleet"))
    print(f"\nfleet up in {time.monotonic() - started:.1f} s: {running.root} (web {running.web_url})")
    try:
        yield running
    finally:
        stopping = time.monotonic()
        running.stop()
        print(f"\nfleet stopped in {time.monotonic() - stopping:.1f} s")


@pytest.fixture(scope="module")
def web(fleet: Fleet) -> WebClient:
    """The administrator, logged in to the fleet's web process over HTTP."""
    return fleet.client()
