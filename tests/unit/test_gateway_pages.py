"""/gateways/ and /gateways.json with a fleet: pages of 50, filters kept, the JSON's shape, constant queries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orchestrator.models import ContainerInstance, Gateway, PullJob

pytestmark = pytest.mark.django_db

# Every key of a gateway in /gateways.json before it paginated: scripts read them, none may go.
GATEWAY_KEYS = {
    "name",
    "online",
    "last_seen",
    "platform",
    "docker_version",
    "docker_error",
    "storage_driver",
    "free_bytes",
    "cpus",
    "memory_bytes",
    "containers_running",
    "agent_version",
    "concurrency",
    "instances",
    "queued",
    "running",
}
FACTS = {"platform": "linux/arm64", "docker_version": "27.1", "cpus": 4, "agent_version": "1.2", "concurrency": 8}


def fleet(count: int, *, offline: int = 0, prefix: str = "gw-") -> list[Gateway]:
    """``count`` gateways (the last ``offline`` of them silent for an hour), each with two instances and pulls.

    Each gateway's first instance has a pull queued and one running, its second a running one, both a history
    of succeeded pulls: the counts must not multiply across instances and pulls.
    """
    now = timezone.now()
    gateways = Gateway.objects.bulk_create(
        Gateway(
            name=f"{prefix}{n:03d}",
            last_seen=now - timedelta(hours=1) if n >= count - offline else now,
            facts={**FACTS, "containers_running": n},
        )
        for n in range(count)
    )
    states = {"app-1": ["succeeded", "succeeded", "queued", "running"], "app-2": ["succeeded", "running"]}
    instances = ContainerInstance.objects.bulk_create(
        ContainerInstance(gateway=gateway, name=f"app-{i}", image_name="busybox")
        for gateway in gateways
        for i in (1, 2)
    )
    PullJob.objects.bulk_create(
        PullJob(instance=instance, reference="docker.io/library/busybox:latest", state=state)
        for instance in instances
        for state in states[instance.name]
    )
    return gateways


def rows(page: str) -> list[str]:
    return re.findall(r'<tr data-gateway="([^"]+)">', page)


def get(client, name: str, **params):
    response = client.get(reverse(name), params)
    assert response.status_code == 200, response.content[:500]
    return response


# --- /gateways/ ----------------------------------------------------------------------------------


def test_the_page_shows_50_gateways_and_page_2_starts_at_the_51st(viewer_client):
    fleet(60)  # and `local`, last by name: 61
    first = get(viewer_client, "gateway-list").content.decode()
    assert rows(first) == [f"gw-{n:03d}" for n in range(50)]
    assert "1–50 of 61 gateways" in first
    assert 'rel="next" href="?page=2&amp;q=&amp;state="' in first and ">Last<" in first and ">First<" not in first
    second = get(viewer_client, "gateway-list", page=2).content.decode()
    assert rows(second)[0] == "gw-050" and rows(second)[-1] == "local" and len(rows(second)) == 11
    assert "51–61 of 61 gateways" in second and "Page 2 of 2" in second
    assert 'href="?page=1&amp;q=&amp;state="' in second and 'rel="prev"' in second and ">Next<" not in second


def test_the_page_keeps_every_column_of_a_row(viewer_client):
    fleet(1)
    page = get(viewer_client, "gateway-list").content.decode()
    row = re.search(r'<tr data-gateway="gw-000">(.*?)</tr>', page, re.S).group(1)
    assert f'<a href="{reverse("gateway-detail", args=["gw-000"])}">gw-000</a>' in row
    assert "2 instances" in row and ">online<" in row and "last seen" in row
    assert "linux/arm64" in row and "27.1" in row and "0 running" in row
    assert "1 queued · 2 running" in row and "(agent 1.2, 8 at once)" in row
    local = re.search(r'<tr data-gateway="local">(.*?)</tr>', page, re.S).group(1)
    assert ">offline<" in local and "never seen" in local and "0 instances" in local


def test_the_filters_stay_in_the_page_links_and_the_summary_counts_the_whole_fleet(viewer_client):
    fleet(70, offline=5)  # gw-065..gw-069 offline, and `local` never seen
    page = get(viewer_client, "gateway-list", q="gw-0", state="online").content.decode()
    assert "1–50 of 65 gateways matching the filter" in page
    assert 'rel="next" href="?page=2&amp;q=gw-0&amp;state=online"' in page
    assert 'href="?page=2&amp;q=gw-0&amp;state=online">Last<' in page
    assert re.search(r'id="gateway-summary">71 gateways: 65 online, 6 offline<', page)
    second = get(viewer_client, "gateway-list", q="gw-0", state="online", page=2).content.decode()
    assert rows(second) == [f"gw-{n:03d}" for n in range(50, 65)]
    offline = get(viewer_client, "gateway-list", state="offline").content.decode()
    assert rows(offline) == ["gw-065", "gw-066", "gw-067", "gw-068", "gw-069", "local"]
    assert "Pages" not in offline  # a single page: no pagination


@pytest.mark.parametrize(
    ("page", "first_row"),
    # Not a number: the first page; past either end (Django's Paginator.get_page): the last.
    [("abc", "gw-000"), ("", "gw-000"), ("1.5", "gw-000"), ("9" * 5000, "gw-000"), ("0", "gw-050"), ("99", "gw-050")],
)
def test_a_bad_page_number_falls_back_to_the_first_or_the_last_page(viewer_client, page, first_row):
    fleet(60)
    assert rows(get(viewer_client, "gateway-list", page=page).content.decode())[0] == first_row


def test_no_match_says_so_and_offers_them_all(viewer_client):
    page = get(viewer_client, "gateway-list", q="nothing-like-this").content.decode()
    assert "No gateway matches the filter." in page and 'id="gateway-count"' not in page
    assert 'id="gateway-summary">1 gateway: 0 online, 1 offline<' in page


# --- /gateways.json ------------------------------------------------------------------------------


def test_the_json_keeps_its_shape_and_counts_each_gateway_s_pulls(viewer_client):
    fleet(3, offline=1)
    data = get(viewer_client, "gateway-json").json()
    assert set(data) == {"gateways", "count"} and data["count"] == 4
    by_name = {gateway["name"]: gateway for gateway in data["gateways"]}
    assert list(by_name) == ["gw-000", "gw-001", "gw-002", "local"]
    assert all(set(gateway) == GATEWAY_KEYS for gateway in data["gateways"])
    first = by_name["gw-000"]
    assert first["online"] is True and first["platform"] == "linux/arm64" and first["cpus"] == 4
    assert (first["instances"], first["queued"], first["running"]) == (2, 1, 2)
    assert first["docker_error"] is None and first["containers_running"] == 0
    stored = Gateway.objects.get(name="gw-000").last_seen
    assert first["last_seen"] == stored.isoformat()
    assert by_name["gw-002"]["online"] is False and by_name["gw-002"]["queued"] == 1
    local = by_name["local"]
    assert local["online"] is False and local["last_seen"] is None and local["platform"] is None
    assert (local["instances"], local["queued"], local["running"]) == (0, 0, 0)


def test_the_json_pages_with_page_and_per_page(viewer_client):
    fleet(60)
    data = get(viewer_client, "gateway-json", page=2, per_page=10).json()
    assert [g["name"] for g in data["gateways"]] == [f"gw-{n:03d}" for n in range(10, 20)]
    assert {k: data[k] for k in ("count", "page", "per_page")} == {"count": 61, "page": 2, "per_page": 10}
    assert len(get(viewer_client, "gateway-json", page=2).json()["gateways"]) == 11  # 50 a page by default
    assert len(get(viewer_client, "gateway-json", per_page=1000).json()["gateways"]) == 61
    past = get(viewer_client, "gateway-json", page=9, per_page=10).json()
    assert past["gateways"] == [] and past["count"] == 61


def test_the_json_filters_like_the_page(viewer_client):
    fleet(30, offline=10)
    online = get(viewer_client, "gateway-json", state="online", per_page=5, page=4).json()
    assert [g["name"] for g in online["gateways"]] == [f"gw-{n:03d}" for n in range(15, 20)]
    assert online["count"] == 20 and all(g["online"] for g in online["gateways"])
    offline = get(viewer_client, "gateway-json", state="offline").json()
    assert offline["count"] == 11 and not any(g["online"] for g in offline["gateways"])
    named = get(viewer_client, "gateway-json", q="GW-02", state="offline").json()
    assert [g["name"] for g in named["gateways"]] == [f"gw-{n:03d}" for n in range(20, 30)]
    assert get(viewer_client, "gateway-json", state="sideways").json()["count"] == 31  # unknown: any state


@pytest.mark.parametrize(
    "params",
    [
        {"page": "abc"},
        {"page": "0"},
        {"page": "-1"},
        {"page": "\u00b2"},
        {"page": "9" * 5000},
        {"per_page": "0"},
        {"per_page": "1001"},
        {"per_page": "1e3"},
    ],
)
def test_a_bad_page_or_per_page_is_a_400_that_says_why(viewer_client, params):
    response = viewer_client.get(reverse("gateway-json"), params)
    assert response.status_code == 400
    error = response.json()["error"]
    name = next(iter(params))
    assert error["code"] == "invalid" and error["message"].startswith(f"{name} must be a whole number")


# --- queries -------------------------------------------------------------------------------------


def queries(client, url: str) -> int:
    client.get(url)  # a session's first request may differ: count the steady state
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


URLS = [
    reverse("gateway-list"),
    reverse("gateway-list") + "?state=online&q=gw",
    reverse("gateway-json"),
    reverse("gateway-json") + "?page=1&per_page=2&state=online",
]


def test_both_lists_make_the_same_queries_for_3_or_60_gateways(viewer_client):
    fleet(3)
    few = [queries(viewer_client, url) for url in URLS]
    fleet(57, prefix="more-")
    many = [queries(viewer_client, url) for url in URLS]
    assert many == few, dict(zip(URLS, zip(few, many, strict=True), strict=True))
    # Session, user, the permissions (2), then the page's summary and its rows; the whole JSON needs no count.
    assert few == [6, 6, 5, 6]
