"""`manage.py agent`: the gateway's agent, the only Docker client of its gateway.

Configured by ``GATEWAY_TOKEN`` (or ``GATEWAY_TOKEN_FILE``; the token names the
gateway), ``CELERY_BROKER_URL``, ``DOCKER_HOST`` and ``CONSOLE_URL``. It is a
Celery worker on its gateway's queues, ``gw.<name>`` (pulls) and
``gw.<name>.control`` (checks, container actions and output, answered by a
consumer of its own so they never wait behind pulls), with the heartbeat
(:mod:`orchestrator.gateways.heartbeat`), which also has the console sweep its jobs.
It runs on its own settings (``orchestrator.conf.agent``: no database, no keys); all
it knows comes from the console's agent API.
"""

from __future__ import annotations

from types import SimpleNamespace

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from orchestrator.agent.client import NotConfigured, Refused, Unreachable, console
from orchestrator.celery import app
from orchestrator.models.gateways import unacked_keys


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
        try:
            # Who this agent is: the console says, from the token (the agent API; nothing is read locally).
            gateway = SimpleNamespace(**console().get("gateway"))
        except NotConfigured as error:
            raise CommandError(str(error)) from None
        except Refused as refused:
            if refused.code == "redirected":
                raise CommandError(refused.message) from None
            # Never say which part was wrong, nor echo the token.
            raise CommandError("The console does not accept this token (rotated, or mistyped).") from None
        except Unreachable as error:
            raise CommandError(f"{error} Check CONSOLE_URL ({settings.CONSOLE_URL}).") from None
        # Read by the heartbeat and the control consumer: this agent's gateway.
        app.conf.console_gateway = gateway.name
        # The console judges a gateway offline by its beat interval and gives a silent job up after its stale
        # period: the agent beats, and waits for a silent console (pulls/link.py), by the console's figures,
        # whatever this gateway's environment says. Set once, before any thread or pool starts.
        settings.GATEWAY_HEARTBEAT_SECONDS = gateway.heartbeat_seconds
        settings.PULL_STALE_AFTER_SECONDS = gateway.stale_after_seconds
        if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
            # This gateway's unacknowledged messages under keys of its own (models/gateways.unacked_keys).
            app.conf.broker_transport_options = {**app.conf.broker_transport_options, **unacked_keys(gateway.name)}
        name = hostname or f"agent@{gateway.name}.%h"
        # Celery's pool runs the pulls; the control queue has a consumer of its own (orchestrator.control.consumer).
        argv = ["worker", "-Q", gateway.pull_queue, "-n", name]
        # Agents need no mingle or gossip with each other (each has its own queues), and no Celery event
        # heartbeats (nothing reads them; the console hears the agent's own beat): less broker traffic, and
        # a per-gateway broker user needs no shared channel (README, "Trust model").
        argv += ["-l", loglevel, "--without-mingle", "--without-gossip", "--without-heartbeat"]
        argv += ["--pool", pool, "-c", str(concurrency or settings.AGENT_CONCURRENCY)]
        self.stdout.write(
            f"Agent of gateway {gateway.name}: pulls from {gateway.pull_queue}, requests from {gateway.control_queue}"
        )
        app.worker_main(argv)
