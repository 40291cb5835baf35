"""Health of the three things a pull needs: the database, the task queue and the gateways' agents.

The web opens no Docker client: a gateway's daemon is judged by its agent's heartbeat and facts.
"""

from __future__ import annotations

import time

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .celery import app
from .models import Gateway
from .security.roles import VIEW_INSTANCE


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
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=0, timeout=2)
        return conn.transport.driver_name


def _gateways() -> str:
    total = Gateway.objects.count()
    online = Gateway.objects.online().count()
    if not online:
        raise RuntimeError(f"no gateway's agent is reporting ({total} gateway{'s' if total != 1 else ''})")
    return f"{online} of {total} gateway{'s' if total != 1 else ''} online"


def health_report() -> dict:
    checks = {"database": _timed(_database), "broker": _timed(_broker), "gateways": _timed(_gateways)}
    return {"ok": all(check["ok"] for check in checks.values()), "checks": checks}


@require_GET
@never_cache
def healthz(request):
    report = health_report()
    # The HTTP status is the web server's own health (it needs its database); the
    # body says whether pulls can run (task queue and gateways too).
    status = 200 if report["checks"]["database"]["ok"] else 503
    if not request.user.has_perm(VIEW_INSTANCE):
        # Up or down is enough for a load balancer; versions and error texts describe the setup
        # (hosts, ports, daemon version), so only those who may see the instances get them.
        report = {"ok": report["ok"], "checks": {name: {"ok": c["ok"]} for name, c in report["checks"].items()}}
    return JsonResponse(report, status=status)
