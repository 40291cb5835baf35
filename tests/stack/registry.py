"""Password-protected Docker registries (Debian's ``docker-registry``) for the test stack.

One plain-HTTP registry on a free loopback port (the daemon trusts loopback),
and for the ECR part a TLS one on 127.0.0.1:443. Both use ``auth: htpasswd``
with a bcrypt file made by ``htpasswd -Bbn``. The config is written as JSON,
which is valid YAML.
"""

from __future__ import annotations

import json
import secrets
import shutil
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from .procs import (
    DEFAULT_TIMEOUT,
    ServiceSpec,
    StackError,
    free_port,
    is_alive,
    read_pid,
    run,
    spawn,
    stop_service,
    tail,
    wait_for,
)

_PORT_ATTEMPTS = 5


def write_htpasswd(path: Path, username: str, password: str) -> None:
    """Write a one-user bcrypt htpasswd file with ``htpasswd -Bbn``."""
    htpasswd = shutil.which("htpasswd")
    if htpasswd is None:
        raise StackError("htpasswd not found: run `bash tests/stack/install.sh` (apache2-utils)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run([htpasswd, "-Bbn", username, password]).strip() + "\n")
    path.chmod(0o600)


def _write_config(
    path: Path,
    *,
    port: int,
    realm: str,
    htpasswd: Path,
    data_dir: Path,
    tls: tuple[Path, Path] | None,
) -> None:
    http: dict[str, object] = {
        "addr": f"127.0.0.1:{port}",
        "secret": secrets.token_hex(16),
        "headers": {"X-Content-Type-Options": ["nosniff"]},
    }
    if tls is not None:
        http["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
    config = {
        "version": "0.1",
        "log": {"level": "info", "fields": {"service": "registry"}},
        "storage": {
            "filesystem": {"rootdirectory": str(data_dir)},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
        },
        "http": http,
        "auth": {"htpasswd": {"realm": realm, "path": str(htpasswd)}},
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)


def _registry_config(state_dir: Path, name: str) -> dict[str, object]:
    return json.loads((state_dir / name / "config.yml").read_text())


def probe(base_url: str, realm: str) -> bool:
    """True if ``base_url/v2/`` asks for Basic auth with ``realm`` (our registry, up)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # identity is checked by the realm
    try:
        urllib.request.urlopen(f"{base_url}/v2/", timeout=2, context=context)  # noqa: S310 - http(s) only
    except urllib.error.HTTPError as exc:
        return exc.code == 401 and f'realm="{realm}"' in (exc.headers.get("Www-Authenticate") or "")
    except (OSError, ValueError):
        return False
    return False  # 200 without credentials: not a password-protected registry


def _base_url(state_dir: Path, name: str) -> tuple[str, str]:
    config = _registry_config(state_dir, name)
    http = config["http"]
    assert isinstance(http, dict)
    scheme = "https" if "tls" in http else "http"
    auth = config["auth"]
    assert isinstance(auth, dict)
    return f"{scheme}://{http['addr']}", str(auth["htpasswd"]["realm"])


def _spawn_and_wait(state_dir: Path, name: str, timeout: float) -> None:
    if read_pid(state_dir / "pids" / f"{name}.pid", state_dir) is not None:
        raise StackError(f"{name} of {state_dir} is already running")
    spec = ServiceSpec.load(state_dir, name)
    pid = spawn(spec, state_dir)
    base_url, realm = _base_url(state_dir, name)

    def ready() -> bool:
        if not is_alive(pid):
            raise StackError(f"{name} exited during start; see {spec.log}:\n{tail(spec.log)}")
        return probe(base_url, realm)

    wait_for(ready, what=f"{name} at {base_url}", log=spec.log, timeout=timeout)


def create(
    state_dir: Path,
    name: str,
    *,
    username: str,
    password: str,
    port: int | None = None,
    tls: tuple[Path, Path] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> int:
    """Configure and start registry ``name`` under ``state_dir/name``; return its port.

    ``port=None`` picks a free loopback port and retries with another one if the
    registry loses the race for it. ``tls`` is ``(certificate, key)``.
    """
    root = state_dir / name
    root.mkdir(parents=True, exist_ok=True)
    htpasswd = root / "htpasswd"
    write_htpasswd(htpasswd, username, password)
    realm = f"tests-stack-{name}-{secrets.token_hex(4)}"
    registry_bin = shutil.which("docker-registry")
    if registry_bin is None:
        raise StackError("docker-registry not found: run `bash tests/stack/install.sh`")
    log = state_dir / f"{name}.log"
    last_error: StackError | None = None
    for _attempt in range(_PORT_ATTEMPTS if port is None else 1):
        chosen = port if port is not None else free_port()
        _write_config(root / "config.yml", port=chosen, realm=realm, htpasswd=htpasswd, data_dir=root / "data", tls=tls)
        ServiceSpec(
            name=name,
            argv=[registry_bin, "serve", str(root / "config.yml")],
            log=str(log),
            pid_file=str(state_dir / "pids" / f"{name}.pid"),
            cwd=str(root),
        ).save(state_dir)
        try:
            _spawn_and_wait(state_dir, name, timeout)
        except StackError as exc:
            stop_service(state_dir, name)
            last_error = exc
            if "address already in use" in tail(log, 5):
                continue
            raise
        return chosen
    raise StackError(f"{name}: no free port after {_PORT_ATTEMPTS} attempts: {last_error}")


def start(state_dir: Path, name: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Start registry ``name`` again with its recorded config (same port, data kept)."""
    _spawn_and_wait(state_dir, name, timeout)


def stop(state_dir: Path, name: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Stop registry ``name`` and wait until its port no longer answers."""
    stop_service(state_dir, name, timeout=timeout)
    if not (state_dir / name / "config.yml").exists():
        return
    base_url, realm = _base_url(state_dir, name)
    wait_for(
        lambda: not probe(base_url, realm),
        what=f"{name} at {base_url} to stop",
        log=state_dir / f"{name}.log",
        timeout=timeout,
    )


def running(state_dir: Path, name: str) -> bool:
    """True if registry ``name``'s process is alive and answers as itself."""
    if read_pid(state_dir / "pids" / f"{name}.pid", state_dir) is None:
        return False
    base_url, realm = _base_url(state_dir, name)
    return probe(base_url, realm)
