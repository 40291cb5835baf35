"""The agent's gateway: what it needs to know at start, and its heartbeat (which also sweeps its jobs).

The heartbeat replaces two threads of today's agent that wrote to the database: the beat with the daemon's
facts (:mod:`orchestrator.gateways.heartbeat`) and the pull sweeper (:mod:`orchestrator.pulls.sweeper`), which
now runs here, for this gateway only, once per beat.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import JsonResponse

from orchestrator.gateways import actions as gateways
from orchestrator.pulls.link import heartbeat_period
from orchestrator.pulls.sweeper import sweep

from .http import endpoint, not_found, read_json
from .schema import INT32, INT63, integer, record, text

log = logging.getLogger(__name__)

API_VERSION = 1

# What the agent's heartbeat reports (heartbeat.daemon_facts, plus the agent's own), and what the gateway pages
# show. Anything else is dropped: the facts are shown to every user, so they hold only what a page expects.
FACTS = {
    "platform": text(64),
    "docker_version": text(64, null=True),
    "storage_driver": text(64, null=True),
    "docker_root": text(1000, null=True),
    "free_bytes": integer(0, INT63, null=True),
    "cpus": integer(0, 1_000_000, null=True),
    "memory_bytes": integer(0, INT63, null=True),
    "containers_running": integer(0, INT32, null=True),
    "docker_error": text(1000),
    "agent_version": text(32),
    "concurrency": integer(0, 100_000, null=True),
    "docker_host": text(500),
}
_FACTS_BODY = record({"facts": record(FACTS)}, required=("facts",))


@endpoint("GET")
def gateway_info(request):
    """What the agent used to read from the console's settings and its gateway's row."""
    gateway = request.gateway
    return JsonResponse(
        {
            "name": gateway.name,
            "api_version": API_VERSION,
            "heartbeat_seconds": settings.GATEWAY_HEARTBEAT_SECONDS,
            "pull_queue": gateway.queue,
            "control_queue": gateway.control_queue,
            # Seconds between two progress events of a pull (the agent's link, pulls/link.py).
            "progress_interval": settings.PULL_PROGRESS_WRITE_INTERVAL,
            # A claimed job's beat period (pulls/link.py), and when the console gives a silent job up.
            "job_beat_seconds": heartbeat_period(),
            "stale_after_seconds": settings.PULL_STALE_AFTER_SECONDS,
        }
    )


def _known_facts(data: dict) -> tuple[dict, list[str]]:
    """The body with only the known facts, and the names of the others (a few, cut short)."""
    facts = data.get("facts")
    if not isinstance(facts, dict):
        return data, []  # the check says what is wrong
    # A newer agent may report more: its beat still counts, the unknown keys are dropped (and named back).
    ignored = sorted(key[:40] for key in facts if key not in FACTS)[:20]
    return {**data, "facts": {key: value for key, value in facts.items() if key in FACTS}}, ignored


@endpoint("POST")
def heartbeat(request):
    """The beat with the daemon's facts, then one sweep of this gateway's jobs."""
    data, ignored = _known_facts(read_json(request))
    facts = _FACTS_BODY(data, "body")["facts"]
    name = request.gateway.name
    if not gateways.beat(name, facts):
        raise not_found("gateway")  # removed since the token was checked
    try:
        # Stale jobs requeued or failed, and queued ones the broker lost sent again: the sweeper's round.
        swept = sweep(gateway=name)
    except Exception:  # a failed sweep must not fail the beat: it was recorded, and the next one sweeps again
        log.exception("agent api: sweep of gateway %s failed", name)
        swept = None
    if swept and any(swept.values()):
        log.info("agent api: sweep of gateway %s: %s", name, swept)
    return JsonResponse({"ok": True, "swept": swept, "ignored_facts": ignored})
