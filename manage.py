#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    if sys.argv[1:2] == ["agent"]:
        # The agent always runs on its own settings, whatever the environment says: no database, no keys
        # (orchestrator/conf/agent.py). A gateway must not be able to run it with the console's.
        os.environ["DJANGO_SETTINGS_MODULE"] = "orchestrator.conf.agent"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
