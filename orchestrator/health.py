"""Health of the three things a pull needs: the database, the task queue and the Docker daemon."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection

from registries.daemon import open_client


def _timed(check) -> dict:
    started = time.monotonic()
    try:
        detail = check()
        ok = True
    except Exception as exc:  # a health check reports failures, it never raises
        detail, ok = f"{type(exc).__name__}: {str(exc)[:200]}", False
    return {"ok": ok, "detail": detail, "ms": round((time.monotonic() - started) * 1000, 1)}


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return connection.vendor


def _broker() -> str:
    from .celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=0, timeout=2)
        return conn.transport.driver_name


def _docker() -> str:
    client = open_client(settings.DOCKER_HOST, timeout=3)
    try:
        version = client.version()
        return f"Docker {version.get('Version')} ({version.get('Os')}/{version.get('Arch')})"
    finally:
        client.close()


def health_report() -> dict:
    checks = {"database": _timed(_database), "broker": _timed(_broker), "docker": _timed(_docker)}
    return {"ok": all(check["ok"] for check in checks.values()), "checks": checks}
