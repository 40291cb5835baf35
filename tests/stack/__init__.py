"""The real services the end-to-end tests, browser tests and benchmarks run against.

``start_stack(state_dir)`` starts a sandboxed Docker daemon, a password-protected
registry seeded with test images and a Redis server (and with ``with_ecr=True``
moto plus a TLS registry named like AWS ECR); ``stop_stack(state_dir)`` ends
them. Install the system packages first with ``bash tests/stack/install.sh``.
CLI: ``python -m tests.stack up|down|status``.
"""

from .procs import StackError
from .services import (
    StackInfo,
    push_random_image,
    stack_status,
    start_dockerd,
    start_ecr_registry,
    start_moto,
    start_redis,
    start_registry,
    start_stack,
    stop_dockerd,
    stop_ecr_registry,
    stop_moto,
    stop_redis,
    stop_registry,
    stop_stack,
)

__all__ = [
    "StackError",
    "StackInfo",
    "push_random_image",
    "stack_status",
    "start_dockerd",
    "start_ecr_registry",
    "start_moto",
    "start_redis",
    "start_registry",
    "start_stack",
    "stop_dockerd",
    "stop_ecr_registry",
    "stop_moto",
    "stop_redis",
    "stop_registry",
    "stop_stack",
]
