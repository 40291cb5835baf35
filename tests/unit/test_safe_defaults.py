"""Defaults that are safe where they are deployed.

The image and docker-compose.yml run as production, `make run` as development;
`.env` stays out of Git and out of the image; AWS and HTTP client libraries never
log at DEBUG (botocore logs response bodies, ECR tokens included); logins are
throttled per user name and per client address, also behind a proxy; /healthz
tells strangers only up or down; the generated admin password goes to a 0600
file and to a terminal, never into `docker compose logs`.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import re
import select
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import Client, RequestFactory
from django.urls import reverse

from orchestrator import health

REPO = Path(__file__).resolve().parents[2]
# The environment a test passes to a child process starts without any of the console's own settings.
OWN_PREFIXES = ("DJANGO_", "DATABASE_", "FIELD_ENCRYPTION_KEY", "AXES_", "CLIENT_IP_", "CELERY_", "LOG_LEVEL")
OWN_NAMES = {"DATA_DIR", "STATIC_ROOT", "DOCKER_HOST"}


def clean_environ() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES) and k not in OWN_NAMES}


def django_child(env: dict, code: str) -> subprocess.CompletedProcess:
    """Run ``code`` after django.setup() in a fresh interpreter with only ``env`` as the console's settings."""
    script = "import json, django\ndjango.setup()\n" + code
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**clean_environ(), "DJANGO_SETTINGS_MODULE": "orchestrator.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def child_json(env: dict, code: str) -> dict:
    result = django_child(env, code)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def load_settings(monkeypatch, tmp_path: Path, **env: str):
    """Execute orchestrator/settings.py afresh under ``env``, apart from the settings this process runs on."""
    for name in list(os.environ):
        if name.startswith(OWN_PREFIXES) or name in OWN_NAMES:
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # The part the agents share is read afresh too (the original comes back after the test).
    monkeypatch.delitem(sys.modules, "orchestrator.conf.runtime", raising=False)
    spec = importlib.util.spec_from_file_location("settings_under_test", REPO / "orchestrator" / "settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- 1. production in the image and in compose, development in `make run` ----------------------


def dockerfile_env() -> dict[str, str]:
    """The ENV of the Dockerfile: what a container of the image starts with."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip().upper().startswith("ENV "):
            for pair in shlex.split(line.strip()[4:]):
                name, _, value = pair.partition("=")
                found[name] = value
    return found


def test_the_image_refuses_to_start_without_its_keys(tmp_path):
    env = dockerfile_env()
    assert env.get("DJANGO_DEBUG") == "0", "the image must run as production unless told otherwise"
    result = django_child({**env, "DATA_DIR": str(tmp_path), "STATIC_ROOT": str(tmp_path / "static")}, "")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_the_image_keeps_the_static_files_it_collects_where_production_looks():
    """The build collects with the production storage (the manifest) into STATIC_ROOT, outside DATA_DIR."""
    env = dockerfile_env()
    static_root = env.get("STATIC_ROOT", "")
    assert static_root and not static_root.startswith((env.get("DATA_DIR", "/data"), "/tmp")), static_root
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    collect = next(line for line in text.splitlines() if "collectstatic" in line)
    assert "DJANGO_DEBUG=1" not in collect, "DEBUG uses the plain storage: no manifest, every page fails"
    assert "STATIC_ROOT=" not in collect, "collect into the STATIC_ROOT the container runs with"


def test_static_files_collected_at_build_serve_a_production_run_with_another_data_dir(tmp_path):
    keys = {"DJANGO_SECRET_KEY": "s" * 50, "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode()}
    common = {**keys, "DJANGO_DEBUG": "0", "STATIC_ROOT": str(tmp_path / "static"), "CELERY_BROKER_URL": ""}
    collect = django_child(
        {**common, "DATA_DIR": str(tmp_path / "build")},
        "from django.core.management import call_command\ncall_command('collectstatic', '--noinput', verbosity=0)",
    )
    assert collect.returncode == 0, collect.stderr[-3000:]
    page = child_json(
        {**common, "DATA_DIR": str(tmp_path / "run"), "DJANGO_SECURE_SSL_REDIRECT": "0"},
        "from django.test import Client\n"
        "r = Client().get('/accounts/login/', HTTP_HOST='localhost')\n"
        "print(json.dumps({'status': r.status_code}))",
    )
    assert page == {"status": 200}


_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


def interpolate(value: str, env: dict) -> str:
    """Compose's ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error} and $$."""

    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group(1) or match.group(4), match.group(2), match.group(3) or ""
        current = env.get(name)
        if op == ":-":
            return current or arg
        if op == "-":
            return arg if current is None else current
        if op in (":?", "?") and (current is None or (op == ":?" and not current)):
            raise KeyError(arg)
        return current or ""

    return _VARIABLE.sub(one, value)


def compose_service_env(service: str, given: dict) -> dict[str, str]:
    config = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    environment = config["services"][service].get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {name: interpolate(str(value), given) for name, value in environment.items() if value is not None}


def test_compose_web_runs_as_production_with_secure_cookies_and_works_behind_a_tls_proxy(tmp_path):
    given = {
        "DJANGO_SECRET_KEY": "c" * 50,
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "POSTGRES_PASSWORD": "z",
    }
    env = compose_service_env("web", given)
    assert env["DJANGO_DEBUG"] == "0"
    # Postgres and Redis are not here; what matters is what the web server makes of the requests.
    env = {name: value for name, value in env.items() if not name.startswith(("DATABASE_", "CELERY_"))}
    seen = child_json(
        {**env, "DATA_DIR": str(tmp_path)},
        "from django.conf import settings\n"
        "from django.test import Client\n"
        "host = settings.ALLOWED_HOSTS[0]\n"
        "plain = Client().get('/', HTTP_HOST=host)\n"
        "proxied = Client().get('/', HTTP_HOST=host, HTTP_X_FORWARDED_PROTO='https')\n"
        "print(json.dumps({'session_secure': settings.SESSION_COOKIE_SECURE,\n"
        "    'csrf_secure': settings.CSRF_COOKIE_SECURE, 'hsts': settings.SECURE_HSTS_SECONDS,\n"
        "    'plain': [plain.status_code, plain.get('Location', '')],\n"
        "    'proxied': [proxied.status_code, proxied.get('Location', '')]}))",
    )
    assert seen["session_secure"] and seen["csrf_secure"] and seen["hsts"] > 0, seen
    # Plain HTTP is sent to HTTPS; what the TLS proxy forwards is served, not redirected in a loop.
    assert seen["plain"][0] == 301 and seen["plain"][1].startswith("https://"), seen
    assert seen["proxied"][0] == 302 and seen["proxied"][1].startswith("/accounts/login/"), seen


def test_make_run_opts_into_development_unless_the_environment_says_otherwise(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    seen = tmp_path / "seen"
    # Stand-ins for the virtualenv's python and celery: they note what they were started with.
    for name in ("python", "celery"):
        tool = venv / "bin" / name
        tool.write_text(f'#!/bin/sh\necho "{name} $1 $2 DJANGO_DEBUG=${{DJANGO_DEBUG-unset}}" >> {seen}\n')
        tool.chmod(0o755)
    (venv / ".runtime").touch()  # newer than requirements.txt: nothing to install
    for given, expected in ((None, "1"), ("0", "0")):
        seen.write_text("")
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG"}
        if given is not None:
            env["DJANGO_DEBUG"] = given
        # Its own session: the run target's `trap 'kill 0'` ends its process group, not this one.
        subprocess.run(
            ["make", "-s", "run", f"VENV={venv}"],
            cwd=REPO,
            env=env,
            capture_output=True,
            timeout=60,
            start_new_session=True,
        )
        lines = seen.read_text().splitlines()
        assert any("manage.py ensure_admin" in line for line in lines), lines
        assert lines and all(line.endswith(f"DJANGO_DEBUG={expected}") for line in lines), (given, lines)


# --- 2. .env stays out of Git and out of the image --------------------------------------------


def test_dotenv_is_ignored_by_git_and_by_docker_builds():
    ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", ".env"], cwd=REPO, timeout=30)
    assert ignored.returncode == 0, ".env is not in .gitignore"
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    assert ".env" in patterns or "**/.env" in patterns, ".env is not in .dockerignore"


# --- 3. no DEBUG logging from AWS and HTTP libraries --------------------------------------------

# The libraries, and the child loggers that write response bodies and request headers.
QUIET = ("botocore", "botocore.parsers", "boto3", "s3transfer", "urllib3", "urllib3.connectionpool")


def test_aws_and_http_loggers_stay_at_warning_when_log_level_is_debug(tmp_path):
    levels = child_json(
        {"LOG_LEVEL": "DEBUG", "DATA_DIR": str(tmp_path)},
        "import logging\n"
        f"names = {QUIET!r}\n"
        "print(json.dumps({'root': logging.getLogger().getEffectiveLevel(),\n"
        "    **{n: logging.getLogger(n).getEffectiveLevel() for n in names}}))",
    )
    assert levels.pop("root") == logging.DEBUG  # the setting was taken: the rest is not an accident
    assert levels == dict.fromkeys(QUIET, logging.WARNING)


def test_a_log_level_that_is_not_one_says_so(monkeypatch, tmp_path):
    with pytest.raises(ImproperlyConfigured, match="LOG_LEVEL"):
        load_settings(monkeypatch, tmp_path, LOG_LEVEL="verbose")
    assert load_settings(monkeypatch, tmp_path, LOG_LEVEL="debug").LOGGING["root"]["level"] == "DEBUG"


# --- 4. login throttling: per user name, per address, and behind a proxy ------------------------

GOOD = "the-right-password-81"


@pytest.fixture
def throttled(settings, db):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed, not security
    return settings


def login(username: str, password: str, address: str, **headers) -> int:
    """One login attempt from ``address`` in a fresh browser; the HTTP status (302 signed in, 429 locked)."""
    response = Client().post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address, **headers
    )
    return response.status_code


def test_five_failures_for_one_user_name_from_five_addresses_lock_that_user_name(throttled, django_user_model):
    django_user_model.objects.create_user("alice", password=GOOD)
    django_user_model.objects.create_user("bob", password=GOOD)
    # The fifth failure is answered with the lockout already.
    assert [login("alice", "wrong", f"198.51.100.{i}") for i in range(5)] == [200] * 4 + [429]
    assert login("alice", GOOD, "198.51.100.99") == 429
    assert login("bob", GOOD, "198.51.100.1") == 302  # the addresses are not locked


def test_five_failures_with_five_user_names_from_one_address_lock_that_address(throttled, django_user_model):
    django_user_model.objects.create_user("carol", password=GOOD)
    assert [login(f"guess-{i}", "wrong", "203.0.113.5") for i in range(5)] == [200] * 4 + [429]
    assert login("carol", GOOD, "203.0.113.5") == 429
    assert login("carol", GOOD, "203.0.113.6") == 302  # the user name is not locked


def test_a_login_of_ones_own_does_not_clear_the_failures_against_another_name(throttled, django_user_model):
    django_user_model.objects.create_user("dave", password=GOOD)
    django_user_model.objects.create_user("mallory", password="mallory-own-pw")
    for round_ in range(2):
        for i in range(2):
            assert login("dave", "guess", f"192.0.2.{10 * round_ + i}") == 200
        assert login("mallory", "mallory-own-pw", f"192.0.2.{10 * round_}") == 302
    # Four failures against dave so far, two logins of mallory's between them: the fifth locks dave.
    assert login("dave", "guess", "192.0.2.99") == 429
    assert login("dave", GOOD, "192.0.2.98") == 429


PROXY = "172.18.0.1"


def test_behind_a_proxy_each_client_has_its_own_counter_and_cannot_choose_it(
    throttled, django_user_model, monkeypatch, tmp_path
):
    loaded = load_settings(monkeypatch, tmp_path, CLIENT_IP_HEADER="X-Forwarded-For", CLIENT_IP_PROXY_COUNT="1")
    throttled.AXES_CLIENT_IP_CALLABLE = loaded.AXES_CLIENT_IP_CALLABLE
    django_user_model.objects.create_user("erin", password=GOOD)
    # The client writes what it likes on the left; the proxy appends the address it saw.
    statuses = [login(f"guess-{i}", "wrong", PROXY, HTTP_X_FORWARDED_FOR=f"10.66.0.{i}, 203.0.113.7") for i in range(5)]
    assert statuses == [200] * 4 + [429]
    assert login("erin", GOOD, PROXY, HTTP_X_FORWARDED_FOR="203.0.113.7") == 429
    assert login("erin", GOOD, PROXY, HTTP_X_FORWARDED_FOR="203.0.113.8") == 302


def test_the_client_address_comes_from_the_configured_header_and_proxy_count(monkeypatch, tmp_path):
    address = load_settings(
        monkeypatch, tmp_path, CLIENT_IP_HEADER="X-Forwarded-For", CLIENT_IP_PROXY_COUNT="2"
    ).AXES_CLIENT_IP_CALLABLE
    factory = RequestFactory()

    def seen(**meta) -> str:
        return address(factory.get("/", REMOTE_ADDR=PROXY, **meta))

    assert seen(HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9, 10.0.0.2") == "203.0.113.9"
    assert seen(HTTP_X_FORWARDED_FOR="[2001:db8::5]:4711, 10.0.0.2") == "2001:db8::5"
    # Not through both proxies, or not an address: the connection's own address counts.
    assert seen(HTTP_X_FORWARDED_FOR="10.0.0.2") == PROXY
    assert seen(HTTP_X_FORWARDED_FOR="nonsense, 10.0.0.2") == PROXY
    assert seen() == PROXY
    assert load_settings(monkeypatch, tmp_path).AXES_CLIENT_IP_CALLABLE is None


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CLIENT_IP_HEADER": "X Forwarded For"}, "CLIENT_IP_HEADER"),
        ({"CLIENT_IP_HEADER": "X_Forwarded_For"}, "CLIENT_IP_HEADER"),
        ({"CLIENT_IP_HEADER": "Forwarded"}, "CLIENT_IP_HEADER"),
        ({"CLIENT_IP_HEADER": "X-Forwarded-For", "CLIENT_IP_PROXY_COUNT": "0"}, "CLIENT_IP_PROXY_COUNT"),
        ({"CLIENT_IP_HEADER": "X-Forwarded-For", "CLIENT_IP_PROXY_COUNT": "one"}, "CLIENT_IP_PROXY_COUNT"),
        ({"CLIENT_IP_PROXY_COUNT": "1"}, "CLIENT_IP_HEADER"),
    ],
)
def test_a_wrong_client_address_setting_stops_the_start_with_its_name(monkeypatch, tmp_path, env, named):
    with pytest.raises(ImproperlyConfigured, match=named):
        load_settings(monkeypatch, tmp_path, **env)


def test_lockouts_count_user_names_and_addresses_separately():
    from django.conf import settings

    assert settings.AXES_LOCKOUT_PARAMETERS == ["username", "ip_address"]


# --- 5. /healthz: up or down for strangers, details for those who may see instances ----------


@pytest.fixture
def detailed_checks(monkeypatch):
    monkeypatch.setattr(health, "_gateways", lambda: "1 of 1 gateway online (Docker 27.5.1)")

    def broker_down():
        raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")

    monkeypatch.setattr(health, "_broker", broker_down)


def minimal(body: dict) -> bool:
    return set(body) == {"ok", "checks"} and all(set(check) == {"ok"} for check in body["checks"].values())


@pytest.mark.django_db
def test_healthz_tells_a_stranger_only_up_or_down(client, detailed_checks):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    body = response.json()
    assert minimal(body) and body["ok"] is False and body["checks"]["gateways"] == {"ok": True}
    assert "27.5.1" not in response.content.decode() and "redis" not in response.content.decode()


@pytest.mark.django_db
def test_healthz_tells_a_signed_in_user_without_the_view_permission_only_up_or_down(client, detailed_checks):
    client.force_login(get_user_model().objects.create_user("no-role", password=GOOD))
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert minimal(response.json()), response.json()
    assert "27.5.1" not in response.content.decode() and "redis" not in response.content.decode()


def test_healthz_shows_versions_and_errors_to_a_viewer(viewer_client, detailed_checks):
    body = viewer_client.get(reverse("healthz")).json()
    assert body["checks"]["gateways"]["detail"] == "1 of 1 gateway online (Docker 27.5.1)"
    assert "Connection refused" in body["checks"]["broker"]["detail"]


# --- 6. the generated admin password: a 0600 file, and the terminal only --------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def data_dir(settings, tmp_path, monkeypatch):
    for name in ("DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_PASSWORD", "DJANGO_SUPERUSER_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    settings.DATA_DIR = tmp_path
    return tmp_path


def password_file(data_dir: Path) -> Path:
    path = data_dir / "initial-admin-password"
    assert path.is_file() and not path.is_symlink()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return path


@pytest.mark.django_db
def test_without_a_terminal_the_password_goes_only_to_a_0600_file(data_dir):
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    password = password_file(data_dir).read_text().strip()
    assert get_user_model().objects.get(username="admin", is_superuser=True).check_password(password)
    assert password not in out.getvalue()
    assert str(data_dir / "initial-admin-password") in out.getvalue()


@pytest.mark.django_db
def test_on_a_terminal_the_password_is_shown_and_written_to_the_file(data_dir):
    main, secondary = os.openpty()
    try:
        with os.fdopen(secondary, "w", closefd=False) as terminal:
            call_command("ensure_admin", stdout=terminal)
        shown = b""
        while select.select([main], [], [], 0.5)[0]:
            shown += os.read(main, 65536)
    finally:
        os.close(main)
        os.close(secondary)
    password = password_file(data_dir).read_text().strip()
    assert password in shown.decode()
    out = Terminal()
    get_user_model().objects.all().delete()
    call_command("ensure_admin", stdout=out)  # any stream that says it is a terminal
    assert password_file(data_dir).read_text().strip() in out.getvalue()


@pytest.mark.django_db
def test_the_password_file_is_created_new_never_written_through_what_was_there(data_dir):
    elsewhere = data_dir / "elsewhere"
    elsewhere.write_text("keep me")
    (data_dir / "initial-admin-password").symlink_to(elsewhere)
    call_command("ensure_admin", stdout=io.StringIO())
    assert elsewhere.read_text() == "keep me"
    password = password_file(data_dir).read_text().strip()
    assert get_user_model().objects.get(username="admin").check_password(password)


@pytest.mark.django_db
def test_no_admin_is_created_when_its_password_cannot_be_kept(data_dir, settings):
    settings.DATA_DIR = data_dir / "not-there"
    with pytest.raises(CommandError, match="not-there"):
        call_command("ensure_admin", stdout=Terminal())
    assert not get_user_model().objects.filter(is_superuser=True).exists()


@pytest.mark.django_db
def test_a_password_from_the_environment_is_neither_shown_nor_written(data_dir, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", GOOD)
    out = Terminal()
    call_command("ensure_admin", stdout=out)
    assert GOOD not in out.getvalue()
    assert not (data_dir / "initial-admin-password").exists()
    assert get_user_model().objects.get(username="admin").check_password(GOOD)
