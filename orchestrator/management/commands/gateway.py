"""`manage.py gateway add NAME | rotate-token NAME | remove NAME | list | ensure-local`."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from orchestrator.gateways.actions import (
    GatewayError,
    add_gateway,
    ensure_local,
    find_by_token,
    remove_gateway,
    rotate_token,
)
from orchestrator.models import Gateway

TOKEN_FILE = "local-gateway-token"  # noqa: S105 - a file name


class Command(BaseCommand):
    help = "Add, list and remove gateways, and rotate the token their agent uses."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("add", help="add a gateway; prints its token once").add_argument("name")
        sub.add_parser("rotate-token", help="a new token; the old one stops working at once").add_argument("name")
        sub.add_parser("remove", help="remove a gateway that has no instances").add_argument("name")
        sub.add_parser("list", help="the gateways and when their agents last reported")
        local = sub.add_parser("ensure-local", help="make sure `local` exists, with a token in a 0600 file")
        local.add_argument("--token-file", default=None, help=f"default: DATA_DIR/{TOKEN_FILE}")

    def handle(self, *args, action, **options):
        try:
            if action == "add":
                gateway, token = add_gateway(options["name"])
                self._show_token(gateway.name, token)
            elif action == "rotate-token":
                self._show_token(options["name"], rotate_token(options["name"]))
            elif action == "remove":
                remove_gateway(options["name"])
                self.stdout.write(f"Removed gateway {options['name']}.")
            elif action == "list":
                for gateway in Gateway.objects.all():
                    seen = gateway.last_seen.isoformat() if gateway.last_seen else "never"
                    state = "online" if gateway.online else "offline"
                    self.stdout.write(f"{gateway.name}\t{state}\tlast seen {seen}")
            else:
                self._ensure_local(options["token_file"])
        except GatewayError as error:
            raise CommandError(str(error)) from None

    def _show_token(self, name: str, token: str) -> None:
        self.stdout.write(f"Token of gateway {name} (shown once; keep it in the gateway's .env as GATEWAY_TOKEN):")
        self.stdout.write(token)
        self.stdout.write("Start its agent with:")
        self.stdout.write(
            f"  GATEWAY_TOKEN={shlex.quote(token)} CONSOLE_URL=<this console's URL> "
            "CELERY_BROKER_URL=<the broker's URL> DOCKER_HOST=unix:///var/run/docker.sock python manage.py agent"
        )

    def _ensure_local(self, token_file: str | None) -> None:
        """For `make run`: the gateway `local` and a token its agent reads, kept in a file only the owner reads."""
        path = Path(token_file or Path(settings.DATA_DIR) / TOKEN_FILE)
        gateway = ensure_local()
        if path.exists() and find_by_token(path.read_text().strip()) == gateway:
            return
        token = rotate_token(gateway.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(token + "\n")
        self.stdout.write(f"Gateway local: its agent's token is in {path}")
