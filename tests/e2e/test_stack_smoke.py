"""Smoke test of the real test stack (tests/stack): no mocks, real daemon/registry/Redis.

Run with ``.venv/bin/python -m pytest -p no:django tests/e2e/test_stack_smoke.py``
as root after ``bash tests/stack/install.sh``. The ECR part (moto + TLS registry
on 127.0.0.1:443, /etc/hosts, certs.d) runs when root (it fails clearly if port
443 is taken); ``TESTS_STACK_ECR=0`` leaves it out, ``TESTS_STACK_ECR=1`` forces it.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import redis
import requests

from tests.stack import (
    StackInfo,
    push_random_image,
    start_dockerd,
    start_redis,
    start_registry,
    start_stack,
    stop_dockerd,
    stop_redis,
    stop_registry,
    stop_stack,
)
from tests.stack.procs import port_in_use, stack_processes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def _want_ecr() -> bool:
    forced = os.environ.get("TESTS_STACK_ECR")
    if forced is not None:
        return forced == "1"
    return os.geteuid() == 0


WITH_ECR = _want_ecr()
needs_ecr = pytest.mark.skipif(not WITH_ECR, reason="the ECR part needs root (/etc/hosts, port 443)")
AUTH_WORDS = ("unauthorized", "authentication required", "no basic auth credentials")


@pytest.fixture(scope="module")
def smoke_stack(stack: StackInfo) -> StackInfo:
    """The session's stack (tests/conftest.py starts it with the ECR part): one ECR registry can hold port 443."""
    return stack


@pytest.fixture(scope="module")
def api(smoke_stack: StackInfo) -> Iterator[docker.APIClient]:
    """Low-level SDK client on the sandboxed daemon."""
    client = docker.APIClient(base_url=smoke_stack.docker_host, timeout=120)
    yield client
    client.close()


def pull(api: docker.APIClient, ref: str, auth_config: dict[str, str] | None) -> list[dict[str, Any]]:
    """Pull as the worker does; raise RuntimeError on an errorDetail chunk."""
    chunks = []
    for chunk in api.pull(ref, stream=True, decode=True, auth_config=auth_config):
        chunks.append(chunk)
        if "errorDetail" in chunk:
            raise RuntimeError(chunk["errorDetail"].get("message", str(chunk)))
    return chunks


def pull_error(api: docker.APIClient, ref: str, auth_config: dict[str, str] | None) -> str:
    """The error text of a pull expected to fail (exception before, or errorDetail in, the stream)."""
    try:
        pull(api, ref, auth_config)
    except (docker.errors.APIError, RuntimeError) as exc:
        return str(exc).lower()
    raise AssertionError(f"pull of {ref} unexpectedly succeeded")


def has_image(api: docker.APIClient, ref: str) -> bool:
    try:
        api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_the_stack_records_its_state(smoke_stack: StackInfo, record_property: Any) -> None:
    # Start-up time is reported, not asserted: speed targets live in the benchmarks.
    record_property("start_stack_seconds", smoke_stack.startup_seconds)
    assert StackInfo.load(smoke_stack.state_dir) == smoke_stack


def test_authenticated_pull_of_busybox(smoke_stack: StackInfo, api: docker.APIClient) -> None:
    ref = smoke_stack.images["busybox"]
    try:
        api.remove_image(ref, force=True)
    except docker.errors.ImageNotFound:
        pass
    chunks = pull(api, ref, smoke_stack.auth_config())
    assert "Downloaded newer image" in chunks[-1].get("status", "")
    assert has_image(api, ref)
    client = docker.DockerClient(base_url=smoke_stack.docker_host)
    try:
        out = client.containers.run(ref, ["echo", "hello"], remove=True, network_mode="none")
    finally:
        client.close()
    assert out == b"hello\n"


def test_wrong_or_missing_password_is_refused(smoke_stack: StackInfo, api: docker.APIClient) -> None:
    ref = smoke_stack.images["layers"]
    wrong = {**smoke_stack.auth_config(), "password": "not-the-password"}
    message = pull_error(api, ref, wrong)
    assert any(word in message for word in AUTH_WORDS), message
    message = pull_error(api, ref, None)
    assert any(word in message for word in AUTH_WORDS), message


def test_layers_image_has_several_big_layers(smoke_stack: StackInfo, api: docker.APIClient) -> None:
    ref = smoke_stack.images["layers"]
    try:
        # Other tests may have pulled it (and run containers from it): download it again.
        for container in api.containers(all=True, filters={"ancestor": ref}):
            api.remove_container(container["Id"], force=True)
        api.remove_image(ref, force=True)
    except docker.errors.ImageNotFound:
        pass
    chunks = pull(api, ref, smoke_stack.auth_config())
    layers = api.inspect_image(ref)["RootFS"]["Layers"]
    assert len(layers) >= 3
    totals = {
        c["id"]: c["progressDetail"]["total"]
        for c in chunks
        if c.get("status") == "Downloading" and c.get("progressDetail", {}).get("total")
    }
    assert sum(1 for total in totals.values() if total >= 8_000_000) >= 3, totals


def test_platforms_without_pulling(smoke_stack: StackInfo) -> None:
    client = docker.DockerClient(base_url=smoke_stack.docker_host)
    try:
        multi = client.images.get_registry_data(smoke_stack.images["multiarch"], auth_config=smoke_stack.auth_config())
        arm = client.images.get_registry_data(smoke_stack.images["arm64_only"], auth_config=smoke_stack.auth_config())
    finally:
        client.close()
    platforms = {(p["os"], p["architecture"]) for p in multi.attrs["Platforms"]}
    assert platforms == {("linux", "amd64"), ("linux", "arm64")}
    assert [(p["os"], p["architecture"]) for p in arm.attrs["Platforms"]] == [("linux", "arm64")]


def test_push_random_image(smoke_stack: StackInfo, api: docker.APIClient) -> None:
    ref = push_random_image(smoke_stack, "bench/random", "t1", layers=2, layer_mb=2)
    assert ref == f"{smoke_stack.registry}/bench/random:t1"
    pull(api, ref, smoke_stack.auth_config())
    assert len(api.inspect_image(ref)["RootFS"]["Layers"]) == 3  # busybox + 2 random


def test_registry_stop_and_start(smoke_stack: StackInfo, api: docker.APIClient) -> None:
    ref = smoke_stack.images["multiarch"]
    stop_registry(smoke_stack)
    message = pull_error(api, ref, smoke_stack.auth_config())
    assert "connection refused" in message or "connect" in message, message
    start_registry(smoke_stack)
    pull(api, ref, smoke_stack.auth_config())  # same port, password and stored images
    assert has_image(api, ref)


def test_redis_stop_and_start(smoke_stack: StackInfo) -> None:
    client = redis.Redis.from_url(smoke_stack.redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        assert client.set("tests.stack", "1")
        stop_redis(smoke_stack)
        with pytest.raises(redis.ConnectionError):
            client.ping()
        start_redis(smoke_stack)
        assert client.ping()
        assert client.get("tests.stack") is None  # no persistence
    finally:
        client.close()


def test_dockerd_stop_and_start(smoke_stack: StackInfo, api: docker.APIClient) -> None:
    container = api.create_container(
        smoke_stack.images["busybox"],
        ["sleep", "300"],
        stop_timeout=1,  # busybox sleep ignores SIGTERM: do not wait the default 10 s
        host_config=api.create_host_config(network_mode="none"),
    )
    api.start(container["Id"])
    stop_dockerd(smoke_stack)
    with pytest.raises((docker.errors.DockerException, requests.ConnectionError)):
        docker.APIClient(base_url=smoke_stack.docker_host, timeout=2).ping()
    start_dockerd(smoke_stack)
    assert api.ping()
    assert has_image(api, smoke_stack.images["busybox"])  # data kept
    state = api.inspect_container(container["Id"])["State"]
    assert not state["Running"]
    api.remove_container(container["Id"], force=True)


@needs_ecr
def test_ecr_token_from_moto_pulls_through_tls(
    smoke_stack: StackInfo, api: docker.APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    assert smoke_stack.moto_url and smoke_stack.ecr_registry and smoke_stack.ecr_ca_file
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", smoke_stack.moto_url)
    for key, value in smoke_stack.env().items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    data = boto3.client("ecr").get_authorization_token()["authorizationData"][0]
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    assert data["proxyEndpoint"] == f"https://{smoke_stack.ecr_registry}"
    assert (username, password) == ("AWS", smoke_stack.ecr_password)
    # the name resolves through /etc/hosts and the certificate verifies with the stack's CA
    answer = requests.get(f"https://{smoke_stack.ecr_registry}/v2/", verify=smoke_stack.ecr_ca_file, timeout=5)
    assert answer.status_code == 401
    ca = Path("/etc/docker/certs.d") / smoke_stack.ecr_registry / "ca.crt"
    assert ca.read_bytes() == Path(smoke_stack.ecr_ca_file).read_bytes()

    ref = smoke_stack.images["ecr"]
    wrong = {"username": "AWS", "password": "expired", "serveraddress": smoke_stack.ecr_registry}
    message = pull_error(api, ref, wrong)
    assert any(word in message for word in AUTH_WORDS), message
    auth = {"username": username, "password": password, "serveraddress": smoke_stack.ecr_registry}
    pull(api, ref, auth)
    assert has_image(api, ref)


def test_base_stack_alone(tmp_path: Path) -> None:
    """A second, base-only stack starts beside the first (free ports, own paths) and stops clean."""
    started = time.monotonic()
    info = start_stack(tmp_path / "base")
    elapsed = time.monotonic() - started
    print(f"\nstart_stack(with_ecr=False) took {elapsed:.1f}s")  # noqa: T201
    try:
        assert info.moto_url is None and "ecr" not in info.images
        # A fresh daemon holds none of the test images: tests pull them.
        assert docker.APIClient(base_url=info.docker_host).images(all=True) == []
        assert set(info.images) == {"busybox", "layers", "arm64_only", "multiarch"}
    finally:
        stop_stack(info.state_dir)
        stop_stack(info.state_dir)  # twice: the second call finds nothing to do
    assert stack_processes(info.state_dir) == []
    assert not Path(info.docker_host.removeprefix("unix://")).exists()
    assert not port_in_use(int(info.registry.rsplit(":", 1)[1]))
    assert not port_in_use(int(info.redis_url.rsplit(":", 1)[1].split("/")[0]))
