"""The agent watches its daemon's events: a container of the console that starts, dies or goes is reported at once.

The heartbeat's pass (every GATEWAY_HEARTBEAT_SECONDS) catches anything this
misses, such as events while the daemon's stream was down.
"""

from __future__ import annotations

import logging
import threading

from celery import bootsteps
from django.conf import settings

from registries.daemon import open_client
from registries.errors import PullError

from . import report
from .daemon import LABEL_INSTANCE

log = logging.getLogger(__name__)

EVENTS = ["create", "start", "restart", "die", "stop", "kill", "oom", "pause", "unpause", "destroy"]


class ContainerWatch(bootsteps.StartStopStep):
    """Registered in orchestrator/celery.py; runs only in an agent (a worker that knows its gateway)."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent, **kwargs) -> None:
        super().__init__(parent, **kwargs)
        self.gateway = parent.app.conf.get("console_gateway")
        self._stop = threading.Event()
        self._stream = None

    def start(self, parent) -> None:
        if self.gateway:
            threading.Thread(target=self._run, name="container-watch", daemon=True).start()

    def stop(self, parent) -> None:
        self._stop.set()
        if self._stream is not None:
            self._stream.close()

    def _run(self) -> None:
        pause = 1.0
        while not self._stop.is_set():
            try:
                client = open_client(settings.DOCKER_HOST, timeout=10)  # the events stream itself waits for ever
            except PullError:
                client = None
            if client is not None:
                try:
                    self._stream = client.events(
                        decode=True, filters={"type": "container", "label": LABEL_INSTANCE, "event": EVENTS}
                    )
                    pause = 1.0
                    for event in self._stream:
                        self._seen(event)
                except Exception as exc:  # the daemon went away or restarted: watch again once it is back
                    if not self._stop.is_set():
                        log.info("gateway %s: daemon events interrupted (%s)", self.gateway, type(exc).__name__)
                finally:
                    client.close()
            if self._stop.wait(pause):
                return
            pause = min(pause * 2, 30.0)

    def _seen(self, event: dict) -> None:
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        instance_id = attributes.get(LABEL_INSTANCE, "")
        if instance_id.isdigit():
            report.refresh(int(instance_id))
