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


AGENT_SETTINGS_PROBE = r"""
import json, os, sys
sys.argv = ["manage.py", "agent", "--help"]
import manage
# manage.main() would run the command; what it chose is all this needs, so stop right after the choice.
from django.core import management
management.execute_from_command_line = lambda argv: None
manage.main()
from django.conf import settings
import django
django.setup()
from django.db import connection
try:
    connection.ensure_connection()
    opened = "opened"
except Exception as error:
    opened = type(error).__name__
from orchestrator.security.encryption import decrypt
try:
    decrypt("fernet:anything")
    decrypted = "decrypted"
except Exception as error:
    decrypted = type(error).__name__
print(json.dumps({"module": os.environ["DJANGO_SETTINGS_MODULE"], "engine": settings.DATABASES["default"]["ENGINE"],
                  "keys": settings.FIELD_ENCRYPTION_KEYS, "opened": opened, "decrypted": decrypted}))
"""


def test_the_agent_always_runs_on_settings_without_a_database_or_keys(tmp_path):
    # Even where the environment names the console's settings (the Makefile exports them) and holds its keys.
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from cryptography.fernet import Fernet

    repo = Path(__file__).resolve().parents[2]
    env = {
        **{name: value for name, value in os.environ.items() if name in ("PATH", "HOME", "LANG")},
        "DJANGO_SETTINGS_MODULE": "orchestrator.settings",
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DATABASE_PATH": str(tmp_path / "console.sqlite3"),
        "DATA_DIR": str(tmp_path / "data"),
        "CELERY_BROKER_URL": "redis://127.0.0.1:9/0",  # not the filesystem broker, whose folders would go there
    }
    result = subprocess.run(
        [sys.executable, "-c", AGENT_SETTINGS_PROBE], cwd=repo, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {
        "module": "orchestrator.conf.agent",
        "engine": "django.db.backends.dummy",
        "keys": [],
        "opened": "ImproperlyConfigured",
        "decrypted": "ImproperlyConfigured",
    }, seen
    # Nothing of the console's was made in the data folder: no generated secret key, no key, no database.
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == []
    assert not (tmp_path / "console.sqlite3").exists()


def test_a_console_url_that_redirects_is_named_and_not_followed(settings, monkeypatch):
    # An http:// address of a console that sends everything to https:// (SECURE_SSL_REDIRECT): the agent must
    # not follow (a POST would become a GET, the token would go elsewhere) and must say what to set.
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    asked = []

    class Redirecting(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            asked.append(self.path)
            self.send_response(301)
            self.send_header("Location", "https://console.example" + self.path)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.CONSOLE_URL = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv("GATEWAY_TOKEN", "gwt_whatever-token-value-long-enough")
        monkeypatch.setattr(client, "_console", None)
        with pytest.raises(CommandError) as error:
            call_command("agent")
    finally:
        server.shutdown()
        server.server_close()
    assert "redirects its agent API to https://console.example/agent/v1/gateway" in str(error.value)
    assert "CONSOLE_URL" in str(error.value) and asked == ["/agent/v1/gateway"]
