"""The console as a user drives it over HTTP: log in, open the form, Save, watch the job JSON."""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

import requests

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken"\s+value="([^"]+)"')
PULL_URL = re.compile(r"/pulls/(\d+)/$")
ENDED = {"succeeded", "failed", "cancelled"}
# A job whose JSON does not change for this long is stuck (the worker sends progress several times a second).
STALLED = 60.0


class ConsoleError(RuntimeError):
    """The console did not do what a user expects (form refused, pull failed...)."""


@dataclass
class Watch:
    """What polling one job saw; times are ``time.time()`` seconds (the server's clock is the same one)."""

    job_id: int
    saved_at: float  # the moment the Save POST was sent
    first_progress_at: float | None = None  # first poll whose JSON had layer progress
    pulled_at: float | None = None  # first poll whose JSON said the image is in place
    seen_done_at: float | None = None  # first poll whose JSON said the job ended
    final: dict[str, Any] = field(default_factory=dict)
    polls: int = 0
    last: dict[str, Any] = field(default_factory=dict)
    last_change: float = field(default_factory=time.monotonic)

    def server_time(self, key: str) -> float | None:
        value = self.final.get(key)
        return datetime.fromisoformat(value).timestamp() if value else None

    @property
    def pull_seconds(self) -> float:
        """Save -> the job JSON says the image is pulled (as seen by polling)."""
        assert self.pulled_at is not None
        return self.pulled_at - self.saved_at

    @property
    def finished_at(self) -> float:
        """When the worker committed the job's final state (server time)."""
        finished = self.server_time("finished_at")
        if finished is None:
            raise ConsoleError(f"job {self.job_id} has no finished_at: {self.final}")
        return finished

    def phases(self) -> dict[str, float]:
        """Where the time went (s): form (Save -> job row), queue (-> a worker took it), pull (-> seen pulled),
        and, when the job also runs the container, job_end (Save -> the job ended, server time)."""
        queued, started = self.server_time("queued_at"), self.server_time("started_at")
        out = {"seen_pulled": self.pull_seconds}
        if queued and started:
            out.update(form=queued - self.saved_at, queue=started - queued, pull=self.pulled_at - started)
        out["job_end"] = self.finished_at - self.saved_at
        return {key: round(value, 4) for key, value in out.items()}


class Console:
    """One logged-in browser-like session (cookies, CSRF token from the page, redirects followed)."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy between us and 127.0.0.1
        page = self.get("/accounts/login/")
        response = self.session.post(
            f"{base_url}/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": self._token(page.text)},
            timeout=30,
        )
        if response.url.rstrip("/") != base_url:
            raise ConsoleError(f"login failed (landed on {response.url})")

    def close(self) -> None:
        self.session.close()

    def get(self, path: str) -> requests.Response:
        response = self.session.get(f"{self.base_url}{path}", timeout=30)
        if response.status_code != 200:
            raise ConsoleError(f"GET {path}: HTTP {response.status_code}")
        return response

    @staticmethod
    def _token(page: str) -> str:
        match = CSRF_INPUT.search(page)
        if match is None:
            raise ConsoleError("no CSRF token in the page")
        return html.unescape(match.group(1))

    def open_form(self) -> dict[str, str | list[str]]:
        """Load the new-instance form (before the user starts typing); return what a browser would submit as is."""
        parser = FormValues("instance-form")
        parser.feed(self.get("/instances/new/").text)
        if "csrfmiddlewaretoken" not in parser.values:
            raise ConsoleError("no CSRF token in the instance form")
        return parser.values

    def save(self, typed: dict[str, str], form: dict[str, str | list[str]]) -> Watch:
        """Click Save: the form as loaded plus what the user typed; follow the redirect to the status page."""
        data = {**form, **typed, "save": "Save"}
        saved_at = time.time()
        response = self.session.post(f"{self.base_url}/instances/new/", data=data, timeout=120)
        match = PULL_URL.search(response.url)
        if response.status_code != 200 or match is None:
            errors = re.findall(r'class="invalid-feedback[^"]*"[^>]*>\s*<strong>(.*?)</strong>', response.text, re.S)
            alerts = re.findall(r'class="alert[^"]*alert-danger[^"]*"[^>]*>(.*?)</div>', response.text, re.S)
            raise ConsoleError(
                f"Save did not start a pull (HTTP {response.status_code}, {response.url}): {errors} {alerts}"
            )
        return Watch(job_id=int(match.group(1)), saved_at=saved_at)

    def job(self, job_id: int) -> dict[str, Any]:
        response = self.session.get(f"{self.base_url}/pulls/{job_id}.json", timeout=30)
        if response.status_code != 200:
            raise ConsoleError(f"GET /pulls/{job_id}.json: HTTP {response.status_code}")
        return response.json()

    def poll(self, watch: Watch, *, interval: float, timeout: float) -> Watch:
        """Poll the job JSON every ``interval`` s until it ends; raise unless it succeeded."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.job(watch.job_id)
            now = time.time()
            watch.polls += 1
            if not poll_once(watch, data, now):
                break
            if time.monotonic() > deadline:
                raise ConsoleError(f"job {watch.job_id} did not end in {timeout} s: {data}")
            time.sleep(interval)
        return check_succeeded(watch)


class FormValues(HTMLParser):
    """The values a browser submits for one form as the page renders it (defaults, checked boxes, selections)."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.values: dict[str, str | list[str]] = {}
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen = False
        self._textarea: str | None = None

    def _add(self, name: str, value: str) -> None:
        if name in self.values:
            old = self.values[name]
            self.values[name] = [*old, value] if isinstance(old, list) else [old, value]
        else:
            self.values[name] = value

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        elif tag == "option" and self._select is not None:
            self._option(a)
        elif not self.inside or "name" not in a or "disabled" in a:
            return
        elif tag == "input":
            kind = a.get("type", "text").lower()
            if kind in {"checkbox", "radio"}:
                if "checked" in a:
                    self._add(a["name"], a.get("value", "on"))
            elif kind not in {"submit", "button", "file", "image", "reset"}:
                self._add(a["name"], a.get("value", ""))
        elif tag == "select":
            self._select, self._select_first, self._select_chosen = a["name"], None, False
        elif tag == "textarea":
            self._textarea = a["name"]
            self.values[a["name"]] = ""

    def _option(self, a: dict[str, str]) -> None:
        value = a.get("value", "")
        if self._select_first is None:
            self._select_first = value
        if "selected" in a and not self._select_chosen:
            self._select_chosen = True
            self._add(self._select or "", value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select is not None:
            if not self._select_chosen and self._select_first is not None:
                self._add(self._select, self._select_first)
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.values[self._textarea] = str(self.values[self._textarea]) + data


def poll_once(watch: Watch, data: dict[str, Any], now: float) -> bool:
    """Record one poll's answer; False once the job has ended.

    The image is in place when the job has ended, or when its container phase
    (``container_state``: pulled, created, running...) has begun: from there on the
    console runs the container, which ``docker pull`` does not do.
    """
    ended = data["state"] in ENDED
    if data != watch.last:
        watch.last, watch.last_change = data, time.monotonic()
    elif time.monotonic() - watch.last_change > STALLED:
        raise ConsoleError(f"pull job {watch.job_id} has not changed for {STALLED} s (see the worker log): {data}")
    if watch.first_progress_at is None and (data.get("layers") or ended):
        watch.first_progress_at = now
    if watch.pulled_at is None and (ended or data.get("container_state")):
        watch.pulled_at = now
    if ended:
        watch.seen_done_at = now
        watch.final = data
        return False
    return True


def check_succeeded(watch: Watch) -> Watch:
    if watch.final.get("state") != "succeeded":
        raise ConsoleError(f"pull job {watch.job_id} did not succeed: {watch.final}")
    return watch
