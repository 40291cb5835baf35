"""The agent API's URLs, mounted at /agent/v1/ (orchestrator/urls.py); docs/agent-api.md describes them."""

from __future__ import annotations

from django.urls import path, re_path, register_converter

from registries.views import json_error

from . import containers, control, gateway, jobs


class RowId:
    """A row id that fits a 64-bit column: Django's ``int`` converter takes any length, and SQLite raises
    OverflowError (a 500) for a number past 2**63."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(RowId, "agent_row_id")


def unknown(request, rest=""):
    # JSON even for a mistyped URL: the agent never has to read an HTML error page.
    return json_error(404, "not_found", "The agent API has no such endpoint.")


# Unnamed on purpose: the agent calls these fixed paths and nothing in the console reverses them, and the
# project's walk of named URLs (tests/unit/test_access.py) expects a login redirect, not a token's 401.
urlpatterns = [
    path("gateway", gateway.gateway_info),
    path("heartbeat", gateway.heartbeat),
    path("jobs/<agent_row_id:job_id>", jobs.job_detail),
    path("jobs/<agent_row_id:job_id>/claim", jobs.claim),
    path("jobs/<agent_row_id:job_id>/events", jobs.post_events),
    path("instances", containers.instance_list),
    path("instances/<agent_row_id:instance_id>", containers.instance_detail),
    path("containers", containers.container_states),
    path("control/<uuid:request_id>/take", control.take),
    path("control/<uuid:request_id>/answer", control.answer),
    re_path(r"^(?P<rest>.*)$", unknown),
]
