"""`manage.py agent`: the gateway's agent, the only Docker client of its gateway.

Configured by ``GATEWAY_TOKEN`` (or ``GATEWAY_TOKEN_FILE``; the token names the
gateway), ``CELERY_BROKER_URL``, ``DOCKER_HOST`` and ``CONSOLE_URL``. It is a
Celery worker on its gateway's queues, ``gw.<name>`` (pulls) and
``gw.<name>.control`` (checks, container actions and output, answered by a
consumer of its own so they never wait behind pulls), with the heartbeat
(:mod:`orchestrator.gateways.heartbeat`) and the pull sweeper for its own jobs.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from orchestrator.celery import app
from orchestrator.gateways.actions import find_by_token


def _token() -> str:
    token = os.environ.get("GATEWAY_TOKEN", "").strip()
    if not token and os.environ.get("GATEWAY_TOKEN_FILE"):
        try:
            token = Path(os.environ["GATEWAY_TOKEN_FILE"]).read_text().strip()
        except OSError as exc:
            raise CommandError(f"GATEWAY_TOKEN_FILE cannot be read: {exc.strerror}") from None
    if not token:
        raise CommandError("Set GATEWAY_TOKEN (or GATEWAY_TOKEN_FILE): `manage.py gateway add NAME` prints one.")
    return token


class Command(BaseCommand):
    help = "Run the agent of the gateway GATEWAY_TOKEN names: pulls, checks and container actions on DOCKER_HOST."

    def add_arguments(self, parser):
        parser.add_argument(
            "-c", "--concurrency", type=int, default=None, help="pulls at once (default AGENT_CONCURRENCY, 8)"
        )
        parser.add_argument(
            "--pool",
            choices=("threads", "prefork"),
            default="threads",
            help="threads (default): a pull mostly waits on the daemon's socket, so 8 threads cost little; "
            "prefork: one process per pull",
        )
        parser.add_argument("-l", "--loglevel", default="info")
        parser.add_argument("--hostname", default=None, help="the worker's name (default agent@<gateway>.%%h)")

    def handle(self, *args, concurrency, pool, loglevel, hostname, **options):
        gateway = find_by_token(_token())
        if gateway is None:
            # Never say which part was wrong, nor echo the token.
            raise CommandError("The console knows no gateway with this token (rotated, or mistyped).")
        # Read by the heartbeat and the sweeper: this agent's gateway, and only its jobs.
        app.conf.console_gateway = gateway.name
        name = hostname or f"agent@{gateway.name}.%h"
        # Celery's pool runs the pulls; the control queue has a consumer of its own (orchestrator.control.consumer).
        argv = ["worker", "-Q", gateway.queue, "-n", name]
        # Agents need no mingle or gossip with each other: each has its own queues, and it saves broker traffic.
        argv += ["-l", loglevel, "--without-mingle", "--without-gossip"]
        argv += ["--pool", pool, "-c", str(concurrency or settings.AGENT_CONCURRENCY)]
        self.stdout.write(
            f"Agent of gateway {gateway.name}: pulls from {gateway.queue}, requests from {gateway.control_queue}"
        )
        app.worker_main(argv)
