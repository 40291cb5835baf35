"""The agent's one way to the console: the agent API (``/agent/v1/``, docs/agent-api.md) over HTTP.

The agent is configured by ``CONSOLE_URL`` and its gateway's token
(``GATEWAY_TOKEN`` or ``GATEWAY_TOKEN_FILE``). A request that fails on the way
(the console restarting, a proxy's 502/503, a timeout) is tried again with a
growing pause; the console's own refusals (4xx) come back as :class:`Refused`
at once. The token and any secret in an answer never reach a log line.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import requests
from django.conf import settings

log = logging.getLogger(__name__)

API = "/agent/v1/"
TIMEOUT = (5, 30)
RETRY_STATUSES = {429, 502, 503, 504}


class ConsoleError(Exception):
    """The console could not be asked, or said no."""


class NotConfigured(ConsoleError):
    """CONSOLE_URL or the token is missing (or the token file cannot be read)."""


class Refused(ConsoleError):
    """The console answered 4xx: ``status``, ``code`` and ``message`` from its JSON error, and the answer's
    other keys in ``details`` (a 409 of a claim names the job's current holder)."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.details = details or {}


class Unreachable(ConsoleError):
    """The console did not answer within the attempts allowed."""


def gateway_token() -> str:
    token = os.environ.get("GATEWAY_TOKEN", "").strip()
    if not token and os.environ.get("GATEWAY_TOKEN_FILE"):
        try:
            token = Path(os.environ["GATEWAY_TOKEN_FILE"]).read_text().strip()
        except OSError as exc:
            raise NotConfigured(f"GATEWAY_TOKEN_FILE cannot be read: {exc.strerror}") from None
    if not token:
        raise NotConfigured("Set GATEWAY_TOKEN (or GATEWAY_TOKEN_FILE): `manage.py gateway add NAME` prints one.")
    return token


class Console:
    """A session to the console's agent API; thread-safe enough for the agent's threads (one session each)."""

    def __init__(self, base_url: str, token: str) -> None:
        if not base_url:
            raise NotConfigured("Set CONSOLE_URL to the console's base URL (e.g. https://console.example.com).")
        self.base = base_url.rstrip("/") + API
        self._auth = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._local = threading.local()

    def __repr__(self) -> str:  # never the token
        return f"Console({self.base!r})"

    def forget_sessions(self) -> None:
        """Drop every thread's session: a forked pool process must not share its parent's connections."""
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers.update(self._auth)
        return session

    def get(self, path: str, *, attempts: int = 5, **params) -> dict:
        return self._call("GET", path, attempts=attempts, params=params or None)

    def post(self, path: str, body: dict | None = None, *, attempts: int = 5) -> dict:
        return self._call("POST", path, attempts=attempts, json=body or {})

    def _call(self, method: str, path: str, *, attempts: int, **kwargs) -> dict:
        pause = 0.5
        for attempt in range(1, attempts + 1):
            try:
                # Never followed: a redirect would turn a POST into a GET, or take the token to another address.
                response = self._session().request(
                    method, self.base + path, timeout=TIMEOUT, allow_redirects=False, **kwargs
                )
            except requests.RequestException as exc:
                why = type(exc).__name__
            else:
                if response.status_code < 300:
                    return response.json()
                if response.status_code < 400:
                    raise _redirected(response)
                if response.status_code not in RETRY_STATUSES:
                    raise _refused(response)
                why = f"HTTP {response.status_code}"
            if attempt == attempts:
                break
            log.info("console %s %s: %s; trying again in %.1f s", method, path, why, pause)
            time.sleep(pause)
            pause = min(pause * 2, 30.0)
        raise Unreachable(f"The console did not answer {method} {path} ({why}).")


def _redirected(response: requests.Response) -> Refused:
    # Typically http:// to a console that sends every request to https:// (SECURE_SSL_REDIRECT).
    where = response.headers.get("Location", "another address")
    return Refused(
        response.status_code,
        "redirected",
        f"The console redirects its agent API to {where}: set CONSOLE_URL to the console's own (https) address.",
    )


def _refused(response: requests.Response) -> Refused:
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    details = {key: value for key, value in body.items() if key != "error"}
    return Refused(response.status_code, error.get("code", "refused"), error.get("message", response.reason), details)


_console: Console | None = None


def _after_fork_in_child() -> None:
    if _console is not None:
        _console.forget_sessions()


# With `--pool prefork`, each pool process starts as a copy of the agent, open keep-alive sockets included.
os.register_at_fork(after_in_child=_after_fork_in_child)


def console() -> Console:
    """The agent's Console, from CONSOLE_URL and the gateway token (made once per process)."""
    global _console
    if _console is None:
        _console = Console(settings.CONSOLE_URL, gateway_token())
    return _console
