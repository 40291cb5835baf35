"""`manage.py agent` learns its gateway from the console's agent API, and says clearly why it cannot start."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from orchestrator.agent import client
from orchestrator.gateways.actions import rotate_token


def test_an_agent_without_a_console_url_says_so(db, settings, monkeypatch):
    settings.CONSOLE_URL = ""
    monkeypatch.setenv("GATEWAY_TOKEN", "gwt_whatever-token-value-long-enough")
    monkeypatch.setattr(client, "_console", None)
    with pytest.raises(CommandError, match="Set CONSOLE_URL"):
        call_command("agent")


def test_an_agent_without_a_token_says_so(db, settings, monkeypatch):
    settings.CONSOLE_URL = "http://127.0.0.1:9"
    monkeypatch.delenv("GATEWAY_TOKEN", raising=False)
    monkeypatch.delenv("GATEWAY_TOKEN_FILE", raising=False)
    monkeypatch.setattr(client, "_console", None)
    with pytest.raises(CommandError, match="Set GATEWAY_TOKEN"):
        call_command("agent")


def test_a_rotated_token_is_refused_by_the_console_without_echoing_it(agent_console, monkeypatch):
    old = rotate_token("local")
    rotate_token("local")  # the agent still has the old one
    monkeypatch.setenv("GATEWAY_TOKEN", old)
    with pytest.raises(CommandError) as refused:
        call_command("agent")
    assert "does not accept this token" in str(refused.value) and old not in str(refused.value)


def test_an_unreachable_console_is_named(db, settings, monkeypatch):
    settings.CONSOLE_URL = "http://127.0.0.1:9"
    monkeypatch.setenv("GATEWAY_TOKEN", "gwt_whatever-token-value-long-enough")
    monkeypatch.setattr(client, "_console", None)
    monkeypatch.setattr(client.time, "sleep", lambda seconds: None)
    with pytest.raises(CommandError, match=r"did not answer GET gateway.*Check CONSOLE_URL \(http://127.0.0.1:9\)"):
        call_command("agent")
