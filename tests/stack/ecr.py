"""AWS ECR without AWS: moto in server mode plus a TLS registry named like ECR.

* ``moto_server -H 127.0.0.1 -p <free port>`` answers ``ecr:GetAuthorizationToken``
  (its token decodes to ``AWS:<account>-auth-token``, ``expiresAt`` fixed in 2015).
* A second ``docker-registry`` serves TLS on 127.0.0.1:443 with a certificate for
  ``<account>.dkr.ecr.<region>.amazonaws.com`` issued by a throw-away CA (openssl),
  and accepts user ``AWS`` with the password moto's token carries.
* ``/etc/hosts`` gets one line for that name, marked with a comment naming the
  state dir, and the CA goes to ``/etc/docker/certs.d/<host>/ca.crt``. What was
  changed is recorded in ``state_dir/undo.json`` *before* changing it, so
  :func:`undo_system` restores exactly that, even after a crash.
"""

from __future__ import annotations

import base64
import json
import shutil
import sys
import urllib.request
from pathlib import Path

from .procs import (
    DEFAULT_TIMEOUT,
    ServiceSpec,
    StackError,
    free_port,
    is_alive,
    port_in_use,
    read_pid,
    run,
    spawn,
    stop_service,
    tail,
    wait_for,
)

MOTO = "moto"
REGISTRY = "ecr-registry"
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
ECR_PORT = 443
HOSTS_FILE = Path("/etc/hosts")
CERTS_D = Path("/etc/docker/certs.d")
#: Fake credentials for boto3 against moto.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
_PORT_ATTEMPTS = 5


# ------------------------------------------------------------------- moto


def _moto_argv(port: int) -> list[str]:
    local = Path(sys.executable).parent / "moto_server"
    binary = str(local) if local.exists() else shutil.which("moto_server")
    if binary is None:
        raise StackError("moto_server not found: pip install -r requirements-dev.txt (moto[server])")
    return [binary, "-H", "127.0.0.1", "-p", str(port)]


def moto_up(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/moto-api/", timeout=2) as response:  # noqa: S310 - http only
        return response.status == 200


def spawn_moto(state_dir: Path) -> tuple[int, str]:
    """Start moto_server on a free port without waiting; return (pid, url)."""
    port = free_port()
    spec = ServiceSpec(
        name=MOTO,
        argv=_moto_argv(port),
        log=str(state_dir / "moto.log"),
        pid_file=str(state_dir / "pids" / f"{MOTO}.pid"),
        cwd=str(state_dir),
    )
    return spawn(spec, state_dir), f"http://127.0.0.1:{port}"


def wait_moto(state_dir: Path, pid: int, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Wait for the moto spawned by :func:`spawn_moto`; on a lost port race start another.

    Returns the URL moto finally listens on.
    """
    log = state_dir / "moto.log"
    for _attempt in range(_PORT_ATTEMPTS):

        def ready(pid: int = pid, url: str = url) -> bool:
            if not is_alive(pid):
                raise StackError(f"moto_server exited during start; see {log}:\n{tail(log)}")
            return moto_up(url)

        try:
            wait_for(ready, what=f"moto_server at {url}", log=log, timeout=timeout)
        except StackError:
            stop_service(state_dir, MOTO)
            if "in use" not in tail(log, 5):
                raise
            pid, url = spawn_moto(state_dir)
            continue
        return url
    raise StackError(f"moto_server: no free port after {_PORT_ATTEMPTS} attempts; see {log}")


def authorization(moto_url: str) -> tuple[str, str, str]:
    """Ask moto for an ECR token as a client would; return (registry host, username, password).

    Also creates the ``team/app`` repository in moto so ECR API calls see it.
    """
    import boto3  # only the ECR part needs it

    client = boto3.client(
        "ecr",
        endpoint_url=moto_url,
        region_name=REGION,
        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    try:
        data = client.get_authorization_token()["authorizationData"][0]
        try:
            client.create_repository(repositoryName="team/app")
        except client.exceptions.RepositoryAlreadyExistsException:
            pass
    finally:
        client.close()
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    host = data["proxyEndpoint"].removeprefix("https://").rstrip("/")
    if host != HOST:
        raise StackError(f"moto's proxyEndpoint is {host!r}, expected {HOST!r}")
    return host, username, password


# ---------------------------------------------------------------- TLS + system


def make_certificates(directory: Path, host: str = HOST) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for ``host``; return (ca, cert, key)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise StackError("openssl not found: run `bash tests/stack/install.sh`")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run(
        [
            openssl,
            "req",
            "-x509",
            *ec,
            "-keyout",
            str(ca_key),
            "-out",
            str(ca_crt),
            "-days",
            "7",
            "-subj",
            "/CN=tests.stack throw-away CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]
    )
    run([openssl, "req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={host}"])
    ext.write_text(
        f"subjectAltName=DNS:{host}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    run(
        [
            openssl,
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca_crt),
            "-CAkey",
            str(ca_key),
            "-CAcreateserial",
            "-out",
            str(crt),
            "-days",
            "7",
            "-extfile",
            str(ext),
        ]
    )
    for secret in (ca_key, key):
        secret.chmod(0o600)
    return ca_crt, crt, key


def _hosts_marker(state_dir: Path) -> str:
    return f"# tests.stack {state_dir}"


def _undo_file(state_dir: Path) -> Path:
    return state_dir / "undo.json"


def install_system(state_dir: Path, ca_crt: Path, host: str = HOST) -> None:
    """Add the /etc/hosts line and /etc/docker/certs.d/<host>/ca.crt, recording how to undo."""
    certs_dir = CERTS_D / host
    created = [str(d) for d in (CERTS_D.parent, CERTS_D, certs_dir) if not d.exists()]
    target = certs_dir / "ca.crt"
    backup = state_dir / "ecr" / "previous-ca.crt"
    undo = {
        "hosts_file": str(HOSTS_FILE),
        "hosts_marker": _hosts_marker(state_dir),
        "ca_file": str(target),
        "ca_backup": str(backup) if target.exists() else None,
        "created_dirs": created,
    }
    _undo_file(state_dir).write_text(json.dumps(undo, indent=2) + "\n")
    if target.exists():
        shutil.copy2(target, backup)
    certs_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ca_crt, target)
    text = HOSTS_FILE.read_text()
    if not text.endswith("\n") and text:
        text += "\n"
    # written in place: /etc/hosts may be a bind mount
    with HOSTS_FILE.open("w") as hosts:
        hosts.write(f"{text}127.0.0.1 {host} {_hosts_marker(state_dir)}\n")


def undo_system(state_dir: Path) -> None:
    """Remove exactly what :func:`install_system` added; safe to call when nothing was."""
    undo_path = _undo_file(state_dir)
    marker = _hosts_marker(state_dir)
    undo = json.loads(undo_path.read_text()) if undo_path.exists() else {}
    hosts_file = Path(undo.get("hosts_file", HOSTS_FILE))
    try:
        lines = hosts_file.read_text().splitlines(keepends=True)
    except OSError:
        lines = []
    kept = [line for line in lines if not line.rstrip().endswith(marker)]
    if kept != lines:
        with hosts_file.open("w") as hosts:
            hosts.write("".join(kept))
    if not undo:
        return
    ca_file = Path(undo["ca_file"])
    if undo.get("ca_backup") and Path(undo["ca_backup"]).exists():
        shutil.copy2(undo["ca_backup"], ca_file)
    else:
        ca_file.unlink(missing_ok=True)
    for directory in reversed(undo.get("created_dirs", [])):
        try:
            Path(directory).rmdir()
        except OSError:
            pass  # not empty (someone else's files) or already gone
    undo_path.unlink()


# ------------------------------------------------------------------ registry


def check_port_free() -> None:
    """Fail early if 127.0.0.1:443 is taken (another stack with ECR, or a web server)."""
    if port_in_use(ECR_PORT):
        raise StackError(f"127.0.0.1:{ECR_PORT} is in use: is another stack with --ecr running?")


def verify_tls(host: str, ca_crt: Path, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Check ``https://<host>/v2/`` resolves via /etc/hosts and its certificate verifies with ``ca_crt``."""
    import requests

    def ok() -> bool:
        return requests.get(f"https://{host}/v2/", verify=str(ca_crt), timeout=2).status_code == 401

    wait_for(ok, what=f"https://{host}/v2/ with a verified certificate", log=None, timeout=timeout)


def moto_running(state_dir: Path) -> bool:
    """True if this stack's moto_server process is alive."""
    return read_pid(state_dir / "pids" / f"{MOTO}.pid", state_dir) is not None
