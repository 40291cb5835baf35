"""The rules behind the fault handling: retry delays and error texts (claims and the sweeper: test_pull_actions.py).

The real faults (killed workers, restarts, cut connections) are in tests/e2e/test_faults.py.
"""

from __future__ import annotations

import pytest

from orchestrator.pulls.runner import RATE_LIMIT_BACKOFF_CAP, retry_delay
from registries.errors import classify, daemon_lost, registry_broke_off

# --- retry delays ---------------------------------------------------------------------


def test_it_waits_the_interval_after_an_ordinary_failure():
    assert retry_delay("registry_unreachable", 30.0) == 30.0
    assert retry_delay("daemon_unreachable", 0.5, 3) == 0.5


def test_it_doubles_the_interval_for_each_rate_limited_answer_in_a_row():
    assert [retry_delay("rate_limited", 0.3, n) for n in (1, 2, 3, 4)] == pytest.approx([0.3, 0.6, 1.2, 2.4])


def test_it_caps_the_rate_limit_backoff_at_ten_minutes_or_the_interval():
    assert retry_delay("rate_limited", 30.0, 200) == RATE_LIMIT_BACKOFF_CAP
    assert retry_delay("rate_limited", 3600.0, 5) == 3600.0  # an interval above the cap is kept


# --- error texts ------------------------------------------------------------------------


def test_a_429_says_docker_hub_limits_anonymous_pulls_and_credentials_help():
    error = classify(
        "toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating",
        "docker.io/library/busybox:latest",
    )
    assert error.code == "rate_limited"
    assert "Docker Hub limits anonymous pulls" in error.message and "credentials" in error.message


def test_a_connection_closed_without_an_answer_is_registry_unreachable_with_the_host():
    error = classify('Get "http://10.0.0.5:5000/v2/": EOF', "10.0.0.5:5000/team/app:1")
    assert error.code == "registry_unreachable"
    assert "10.0.0.5:5000" in error.message


def test_a_broken_off_layer_and_a_lost_daemon_name_what_went_away():
    broke = registry_broke_off("registry.example:5000/team/app:1", "a1b2c3")
    assert broke.code == "registry_unreachable" and "registry.example:5000" in broke.message
    assert broke.retryable
    lost = daemon_lost("team/app:1", "unix:///var/run/docker.sock", "context canceled")
    assert lost.code == "daemon_unreachable" and "unix:///var/run/docker.sock" in lost.message
