"""Static files in production: collectstatic with hashed names, served by whitenoise under gunicorn.

Gateways are often offline, so the CSS and the vendored htmx/Bootstrap must come
from the console itself, with DEBUG off and no CDN.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[2]
# What every page loads; all of it ships in the repository (no CDN).
BUNDLED = (
    "css/app.css",
    "js/app.js",
    "vendor/htmx-2.0.11/htmx.min.js",
    "vendor/bootstrap-5.3.9/bootstrap.min.css",
    "vendor/bootstrap-5.3.9/bootstrap.bundle.min.js",
)


def production_env(data_dir: Path) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DATABASE_"))}
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "orchestrator.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "static-test-" + "k" * 60,
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DJANGO_ALLOWED_HOSTS": "example.com",
        # Plain HTTP on loopback for the test; production keeps the HTTPS redirect.
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DATA_DIR": str(data_dir),
        "CELERY_BROKER_URL": "",
    }


def manage(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str, **headers) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": "example.com", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback test server
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture(scope="module")
def production_server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("static-prod")
    env = production_env(data_dir)
    for args in (["collectstatic", "--noinput"], ["migrate", "--noinput"]):
        result = manage(args, env)
        assert result.returncode == 0, result.stderr[-3000:]
    port = free_port()
    log = (data_dir / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "orchestrator.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((data_dir / "gunicorn.log").read_text()[-3000:]) from None
                time.sleep(0.1)
        yield port, data_dir / "staticfiles"
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_collectstatic_writes_hashed_and_compressed_files(production_server):
    _, root = production_server
    paths = json.loads((root / "staticfiles.json").read_text())["paths"]
    for name in BUNDLED:
        hashed = paths[name]
        assert hashed != name and (root / hashed).exists() and (root / f"{hashed}.gz").exists(), name


def test_pages_link_hashed_files_that_whitenoise_serves_with_long_caching(production_server):
    port, root = production_server
    status, _, body = get(port, "/accounts/login/")
    assert status == 200
    page = body.decode()
    links = re.findall(r'(?:href|src)="(/static/[^"]+)"', page)
    for name in BUNDLED:
        stem = "/static/" + name.rsplit(".", 1)[0] + "."
        assert any(link.startswith(stem) for link in links), (name, links)
    for link in links:
        assert re.search(r"\.[0-9a-f]{12}\.\w+$", link), f"{link} has no content hash: not the manifest storage"
        status, headers, content = get(port, link)
        assert status == 200, link
        assert "immutable" in headers.get("Cache-Control", ""), (link, headers)
        assert content == (root / link.removeprefix("/static/")).read_bytes()
    # Compressed when the browser accepts it.
    css = next(link for link in links if link.endswith(".css") and "app." in link)
    status, headers, _ = get(port, css, **{"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("Content-Encoding") == "gzip"
    # Nothing comes from another origin: the page works on an offline gateway.
    assert not re.search(r'(?:href|src)="(?:https?:)?//', page)
