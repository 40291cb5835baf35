"""The agent's heartbeat: a thread in the agent's worker that reports it is alive, with its gateway's facts.

Every ``GATEWAY_HEARTBEAT_SECONDS`` it asks the daemon for its facts (platform,
Docker version, storage driver and free space, CPUs, memory, running
containers) and sends them to the console (``POST /agent/v1/heartbeat``, which
also sweeps the gateway's jobs), then reports the states of its containers. It beats even
when the daemon does not answer (the agent is alive; the facts say the daemon
is not), and not at all once the process is gone: the console judges a
gateway offline from the heartbeat's age alone.
"""

from __future__ import annotations

import logging
import os
import threading

from celery import bootsteps
from django.conf import settings

from orchestrator.agent.client import ConsoleError, Refused, console
from orchestrator.containers import report
from orchestrator.containers.daemon import ContainerError
from registries.daemon import open_client
from registries.errors import PullError
from registries.platforms import from_docker_info

log = logging.getLogger(__name__)
AGENT_VERSION = "1"


def daemon_facts(docker_host: str) -> dict:
    """What the daemon says about its host; ``docker_error`` when it does not answer."""
    try:
        client = open_client(docker_host, timeout=10)
    except PullError as error:
        return {"docker_error": error.message}
    try:
        info, version = client.info(), client.version()
    except Exception as exc:  # noqa: BLE001 - a heartbeat reports, it never fails
        return {"docker_error": f"The Docker daemon did not answer: {type(exc).__name__}"}
    finally:
        client.close()
    root = str(info.get("DockerRootDir") or "")
    return {
        "platform": from_docker_info(info),
        "docker_version": version.get("Version"),
        "storage_driver": info.get("Driver"),
        "docker_root": root,
        "free_bytes": _free_bytes(root),
        "cpus": info.get("NCPU"),
        "memory_bytes": info.get("MemTotal"),
        "containers_running": info.get("ContainersRunning"),
    }


def _free_bytes(path: str) -> int | None:
    # Only when the agent shares the daemon's file system (not in a container with just the socket).
    try:
        stat = os.statvfs(path)
    except (OSError, ValueError):
        return None
    return stat.f_bavail * stat.f_frsize


class Heartbeat(bootsteps.StartStopStep):
    """Registered in orchestrator/celery.py; runs only in an agent (a worker that knows its gateway)."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent, **kwargs) -> None:
        super().__init__(parent, **kwargs)
        self.gateway = parent.app.conf.get("console_gateway")
        self.concurrency = getattr(parent, "concurrency", None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, parent) -> None:
        if not self.gateway:
            return
        self._thread = threading.Thread(target=self._run, name="gateway-heartbeat", daemon=True)
        self._thread.start()
        log.info("heartbeat of gateway %s: every %s s", self.gateway, settings.GATEWAY_HEARTBEAT_SECONDS)

    def stop(self, parent) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def beat_once(self) -> bool:
        facts = {
            **daemon_facts(settings.DOCKER_HOST),
            "agent_version": AGENT_VERSION,
            "concurrency": self.concurrency,
            "docker_host": settings.DOCKER_HOST,
        }
        try:
            # One try: a beat that does not arrive is a beat missed, and the next comes soon.
            console().post("heartbeat", {"facts": facts}, attempts=1)
        except Refused as refused:
            if refused.status == 404:
                return False  # the gateway was removed
            raise
        if "docker_error" not in facts:
            self._report_containers()
        return True

    def _report_containers(self) -> None:
        # Every beat, the states of the gateway's containers, so a crash or a `docker stop` on the host shows.
        try:
            report.resync()
        except (ContainerError, ConsoleError) as error:
            log.info("gateway %s: container states not reported: %s", self.gateway, type(error).__name__)

    def _run(self) -> None:
        while True:
            try:
                if not self.beat_once():
                    log.warning("gateway %s is not in the console's database; heartbeat not recorded", self.gateway)
            except ConsoleError as exc:
                log.warning("gateway %s: heartbeat not delivered: %s", self.gateway, exc)
            if self._stop.wait(settings.GATEWAY_HEARTBEAT_SECONDS):
                return
