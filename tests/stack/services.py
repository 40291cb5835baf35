"""Start and stop the real test stack: sandboxed dockerd, password registry, Redis (+ ECR).

Usage::

    info = start_stack(tmp_path / "stack", with_ecr=True)
    try:
        ...  # DOCKER_HOST=info.docker_host, pull info.images["busybox"], ...
    finally:
        stop_stack(info.state_dir)

Everything started is recorded under ``state_dir`` (pid files, command lines,
logs, ``stack.json``), so ``stop_stack(state_dir)`` works from any process,
e.g. ``python -m tests.stack down`` after ``python -m tests.stack up``.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import dockerd, ecr, images, random_images, redisd, registry
from .procs import (
    DEFAULT_TIMEOUT,
    ServiceSpec,
    StackError,
    is_alive,
    read_pid,
    spawn,
    stack_processes,
    stop_service,
    terminate_tree,
    wait_for,
)

REGISTRY = "registry"
REGISTRY_USERNAME = "tester"
MARKER_FILE = ".tests-stack"
STACK_JSON = "stack.json"


@dataclass
class StackInfo:
    """Where the running stack's services are and how to log in to them."""

    state_dir: Path
    docker_host: str
    registry: str
    registry_username: str
    registry_password: str
    redis_url: str
    images: dict[str, str] = field(default_factory=dict)
    moto_url: str | None = None
    ecr_registry: str | None = None
    ecr_username: str | None = None
    ecr_password: str | None = None
    ecr_ca_file: str | None = None
    startup_seconds: float | None = None

    def to_json(self) -> str:
        """The info as JSON (paths as strings)."""
        data = dataclasses.asdict(self)
        data["state_dir"] = str(self.state_dir)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StackInfo:
        """Parse what :meth:`to_json` wrote (unknown keys are ignored)."""
        data: dict[str, Any] = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in names}
        data["state_dir"] = Path(data["state_dir"])
        return cls(**data)

    def save(self) -> Path:
        """Write ``state_dir/stack.json`` (mode 0600: it holds the test passwords)."""
        path = self.state_dir / STACK_JSON
        path.write_text(self.to_json() + "\n")
        path.chmod(0o600)
        return path

    @classmethod
    def load(cls, state_dir: Path) -> StackInfo:
        """Read ``state_dir/stack.json``."""
        path = Path(state_dir).resolve() / STACK_JSON
        if not path.exists():
            raise StackError(f"no stack in {state_dir} ({path} missing): run start_stack first")
        return cls.from_json(path.read_text())

    @property
    def with_ecr(self) -> bool:
        """True if the ECR part (moto + TLS registry) was started."""
        return self.ecr_registry is not None

    def auth_config(self) -> dict[str, str]:
        """Docker SDK ``auth_config`` for the password registry."""
        return {"username": self.registry_username, "password": self.registry_password, "serveraddress": self.registry}

    def ecr_auth_config(self) -> dict[str, str]:
        """Docker SDK ``auth_config`` for the ECR-like registry (moto's token password)."""
        if self.ecr_registry is None or self.ecr_password is None:
            raise StackError("stack was started without ECR (with_ecr=False)")
        return {
            "username": self.ecr_username or "AWS",
            "password": self.ecr_password,
            "serveraddress": self.ecr_registry,
        }

    def env(self) -> dict[str, str]:
        """Environment variables that point a worker or test run at this stack."""
        env = {"DOCKER_HOST": self.docker_host, "REDIS_URL": self.redis_url}
        if self.moto_url is not None:
            env.update(ecr.AWS_ENV, AWS_ENDPOINT_URL_ECR=self.moto_url)
        if self.ecr_ca_file is not None:
            env["TESTS_STACK_ECR_CA"] = self.ecr_ca_file
        return env


# ------------------------------------------------------------------ lifecycle


def _prepare(state_dir: Path) -> None:
    """Stop a previous stack in ``state_dir`` and empty it (only if it is a stack dir)."""
    if state_dir.exists() and any(state_dir.iterdir()):
        if not (state_dir / MARKER_FILE).exists():
            raise StackError(f"{state_dir} is not empty and is not a tests.stack dir; refusing to use it")
        stop_stack(state_dir)
        _empty(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / MARKER_FILE).write_text("state dir of tests/stack; `python -m tests.stack down`\n")


def _empty(state_dir: Path) -> None:
    """Delete everything in ``state_dir`` except the marker file."""
    for child in state_dir.iterdir():
        if child.name == MARKER_FILE:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def start_stack(state_dir: Path, *, with_ecr: bool = False) -> StackInfo:
    """Start dockerd, the password registry and Redis (and the ECR part); seed the images.

    A previous stack in ``state_dir`` is stopped and its data removed first. If
    anything fails, everything started so far is stopped again before the error
    propagates. Returns the info also written to ``state_dir/stack.json``.
    """
    state_dir = Path(state_dir).resolve()
    started = time.monotonic()
    _prepare(state_dir)
    try:
        moto: tuple[int, str] | None = None
        ca_crt = cert = key = None
        if with_ecr:
            ecr.check_port_free()
            moto = ecr.spawn_moto(state_dir)  # slowest to boot: start it first
            ca_crt, cert, key = ecr.make_certificates(state_dir / "ecr" / "tls")
            ecr.install_system(state_dir, ca_crt)  # before dockerd reads /etc/hosts
        docker_pid = dockerd.spawn(state_dir)
        password = secrets.token_urlsafe(18)
        port = registry.create(state_dir, REGISTRY, username=REGISTRY_USERNAME, password=password)
        info = StackInfo(
            state_dir=state_dir,
            docker_host=dockerd.docker_host(state_dir),
            registry=f"127.0.0.1:{port}",
            registry_username=REGISTRY_USERNAME,
            registry_password=password,
            redis_url=redisd.create(state_dir),
        )
        info.save()
        ecr_login = None
        if moto is not None and ca_crt is not None and cert is not None and key is not None:
            info.moto_url = ecr.wait_moto(state_dir, *moto)
            host, username, token_password = ecr.authorization(info.moto_url)
            registry.create(
                state_dir, ecr.REGISTRY, username=username, password=token_password, port=ecr.ECR_PORT, tls=(cert, key)
            )
            ecr.verify_tls(host, ca_crt)
            info.ecr_registry, info.ecr_username, info.ecr_password = host, username, token_password
            info.ecr_ca_file = str(ca_crt)
            ecr_login = (host, username, token_password)
            info.save()
        dockerd.wait_ready(state_dir, docker_pid)
        info.images = images.seed(
            info.docker_host,
            info.registry,
            info.registry_username,
            info.registry_password,
            state_dir / "build",
            ecr=ecr_login,
        )
        info.startup_seconds = round(time.monotonic() - started, 2)
        info.save()
        return info
    except BaseException:
        try:
            stop_stack(state_dir)
        except Exception:  # noqa: BLE001, S110 - the original error matters more
            pass
        raise


def stop_stack(state_dir: Path, *, purge: bool = False) -> None:
    """Stop everything the stack in ``state_dir`` started and undo its system changes.

    Kills by pid files (process groups), then any leftover process marked with
    this state dir; removes the /etc/hosts line and certs.d entry of the ECR
    part. Safe to call twice or on a half-started stack. ``purge`` also deletes
    ``state_dir``.
    """
    state_dir = Path(state_dir).resolve()
    if not state_dir.exists():
        return
    errors: list[str] = []
    for name in (redisd.NAME, REGISTRY, ecr.REGISTRY, ecr.MOTO):
        try:
            stop_service(state_dir, name)
        except StackError as exc:
            errors.append(str(exc))
    try:
        dockerd.stop(state_dir)
    except StackError as exc:
        errors.append(str(exc))
    for pid in stack_processes(state_dir):
        if not terminate_tree(pid):
            errors.append(f"process {pid} of the stack survived SIGKILL")
    try:
        ecr.undo_system(state_dir)
    except OSError as exc:
        errors.append(f"could not undo /etc/hosts or certs.d changes: {exc}")
    short = dockerd.run_dir(state_dir)
    if short != state_dir:
        shutil.rmtree(short, ignore_errors=True)
    if purge and (state_dir / MARKER_FILE).exists():
        try:
            _empty(state_dir)  # the marker goes last, so a failed purge can be retried
            (state_dir / MARKER_FILE).unlink(missing_ok=True)
            state_dir.rmdir()
        except OSError as exc:
            errors.append(f"could not remove {state_dir}: {exc}")
    if errors:
        raise StackError("stop_stack: " + "; ".join(errors))


# ------------------------------------------------------ controls for fault tests


def stop_dockerd(info: StackInfo, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Stop the sandboxed daemon (containers stop too; images and data are kept)."""
    dockerd.stop(info.state_dir, timeout=timeout)


def start_dockerd(info: StackInfo, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Start the daemon again on the same socket and data; wait until it answers."""
    dockerd.start(info.state_dir, timeout=timeout)


def stop_registry(info: StackInfo, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Stop the password registry; wait until its port no longer answers."""
    registry.stop(info.state_dir, REGISTRY, timeout=timeout)


def start_registry(info: StackInfo, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Start the password registry again (same port, password and stored images)."""
    registry.start(info.state_dir, REGISTRY, timeout=timeout)


def stop_redis(info: StackInfo, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Stop Redis; wait until its port no longer answers."""
    redisd.stop(info.state_dir, info.redis_url, timeout=timeout)


def start_redis(info: StackInfo, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Start Redis again on the same port (it comes back empty: no persistence)."""
    redisd.start(info.state_dir, info.redis_url, timeout=timeout)


def stop_ecr_registry(info: StackInfo, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Stop the TLS ECR-like registry on 127.0.0.1:443."""
    registry.stop(info.state_dir, ecr.REGISTRY, timeout=timeout)


def start_ecr_registry(info: StackInfo, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Start the TLS ECR-like registry again."""
    registry.start(info.state_dir, ecr.REGISTRY, timeout=timeout)


def stop_moto(info: StackInfo, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Stop moto_server (boto3 token requests then fail to connect)."""
    stop_service(info.state_dir, ecr.MOTO, timeout=timeout)


def start_moto(info: StackInfo, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Start moto_server again on the same port (its state starts empty)."""
    if info.moto_url is None:
        raise StackError("stack was started without ECR (with_ecr=False)")
    spec = ServiceSpec.load(info.state_dir, ecr.MOTO)
    if read_pid(spec.pid_file, info.state_dir) is not None:
        raise StackError("moto_server is already running")
    pid = spawn(spec, info.state_dir)
    moto_url = info.moto_url

    def ready() -> bool:
        if not is_alive(pid):
            raise StackError(f"moto_server exited during start; see {spec.log}")
        return ecr.moto_up(moto_url)

    wait_for(ready, what=f"moto_server at {moto_url}", log=spec.log, timeout=timeout)


def push_random_image(info: StackInfo, repo: str, tag: str, layers: int, layer_mb: int) -> str:
    """Push ``<registry>/<repo>:<tag>`` with ``layers`` random layers of ``layer_mb`` MiB each.

    The image also starts with the small busybox layer (so it has ``layers + 1``
    layers and runs ``/bin/sh``). It goes straight to the registry over its HTTP
    API; the daemon is not involved and does not get the image. Returns the
    full reference.
    """
    return random_images.push_layers_via_api(
        info.registry,
        info.registry_username,
        info.registry_password,
        repo,
        tag,
        layers,
        layer_mb,
        info.state_dir / "build",
    )


def stack_status(state_dir: Path) -> dict[str, bool]:
    """Which services of the stack in ``state_dir`` are up (process alive and answering)."""
    info = StackInfo.load(state_dir)
    status = {
        "dockerd": _answers(lambda: dockerd.ping(info.docker_host)),
        "registry": registry.running(info.state_dir, REGISTRY),
        "redis": redisd.server_pid(info.redis_url) is not None,
    }
    if info.with_ecr:
        status["moto"] = ecr.moto_running(info.state_dir)
        status["ecr-registry"] = registry.running(info.state_dir, ecr.REGISTRY)
    return status


def _answers(probe: Any) -> bool:
    try:
        return bool(probe())
    except Exception:  # noqa: BLE001 - down is down
        return False
