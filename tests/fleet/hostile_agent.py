"""A misconfigured (or hostile) agent: one gateway's token, consuming another gateway's queues.

``python -m tests.fleet.hostile_agent GATEWAY`` with an agent's environment (its ``GATEWAY_TOKEN`` names some other
gateway) runs the agent's own code on ``gw.GATEWAY`` and ``gw.GATEWAY.control``, as `manage.py agent` would if the
token and the queues disagreed. `manage.py agent` cannot be made to do that (it takes its queues from the
console's answer for the token), which is why this exists only in the tests.
"""

from __future__ import annotations

import os
import sys


def main(gateway: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "orchestrator.conf.agent"
    import django

    django.setup()
    from orchestrator.celery import app
    from orchestrator.models.gateways import pull_queue

    app.conf.console_gateway = gateway  # the control consumer takes this gateway's requests too
    argv = ["worker", "-Q", pull_queue(gateway), "-n", f"hostile@{gateway}.%h", "-l", "info"]
    app.worker_main([*argv, "--without-mingle", "--without-gossip", "--pool", "threads", "-c", "2"])


if __name__ == "__main__":
    main(sys.argv[1])
