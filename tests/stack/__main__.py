"""``python -m tests.stack up [--ecr] [--state DIR] | down [--state DIR] [--purge] | status``.

``up`` prints the StackInfo JSON, then ``export ...`` lines for a shell::

    eval "$(python -m tests.stack up | grep '^export ')"
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .procs import StackError
from .services import StackInfo, stack_status, start_stack, stop_stack

DEFAULT_STATE = Path(__file__).resolve().parents[2] / ".stack"


def _exports(info: StackInfo) -> str:
    pairs = " ".join(f"{key}={shlex.quote(value)}" for key, value in info.env().items())
    return f"export {pairs}"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the stack (stopping a previous one in DIR)")
    up.add_argument("--ecr", action="store_true", help="also start moto + the TLS ECR registry")
    down = sub.add_parser("down", help="stop the stack and undo /etc/hosts and certs.d changes")
    down.add_argument("--purge", action="store_true", help="also delete the state dir")
    status = sub.add_parser("status", help="show which services are up (exit 1 if any is down)")
    for command in (up, down, status):
        command.add_argument("--state", type=Path, default=DEFAULT_STATE, help=f"state dir (default: {DEFAULT_STATE})")
    args = parser.parse_args(argv)
    state = args.state.resolve()
    try:
        if args.command == "up":
            info = start_stack(state, with_ecr=args.ecr)
            print(info.to_json())
            print(_exports(info))
            print(
                f"# started in {info.startup_seconds}s; stop with: python -m tests.stack down"
                f" --state {shlex.quote(str(state))}"
            )
        elif args.command == "down":
            stop_stack(state, purge=args.purge)
            print(f"stack in {state} stopped")
        else:
            info = StackInfo.load(state)
            services = stack_status(state)
            for name, up_now in services.items():
                print(f"{name:13} {'up' if up_now else 'DOWN'}")
            print(_exports(info))
            return 0 if all(services.values()) else 1
    except StackError as exc:
        print(f"tests.stack: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
