"""Helpers for end-to-end tests: create instances, wait for jobs, look into the daemon."""

from __future__ import annotations

import time

import docker

from orchestrator.models import ContainerInstance, PullJob


def make_instance(stack, image_key: str = "busybox", *, password: str | None = None, **overrides) -> ContainerInstance:
    reference = stack.images[image_key]
    name, tag = reference.rsplit(":", 1)
    fields = dict(
        name=overrides.pop("name", f"e2e-{image_key}-{time.monotonic_ns()}"),
        image_name=name,
        image_tag=tag,
        registry_url=stack.registry,
        registry_username=stack.registry_username,
        registry_password=stack.registry_password if password is None else password,
        download_retries=1,
        download_retry_interval=200,
        download_timeout=120,
    )
    fields.update(overrides)
    return ContainerInstance.objects.create(**fields)


def form_data(stack, image_key: str = "busybox", **overrides) -> dict:
    """What an operator types into the form for a stack image: credentials, one retry, short interval."""
    image, tag = stack.images[image_key].rsplit(":", 1)
    data = {
        "name": f"form-{image_key}",
        "enabled": "on",
        "image_name": image,
        "image_tag": tag,
        "registry_url": stack.registry,
        "registry_username": stack.registry_username,
        "registry_password": stack.registry_password,
        "download_retries": 1,
        "download_retry_interval": 200,
        "download_timeout": 120,
    }
    data.update(overrides)
    return data


def wait_for_job(job_id: int, timeout: float = 120, *, sample=None) -> PullJob:
    """Poll the job row until it ends; ``sample`` is called with each new JSON state."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        job = PullJob.objects.select_related("instance").get(pk=job_id)
        data = job.as_json()
        if sample is not None and data != last:
            sample(data)
        last = data
        if not job.is_active:
            return job
        time.sleep(0.05)
    raise AssertionError(f"pull job {job_id} did not end in {timeout} s: {last}")


def docker_client(stack) -> docker.DockerClient:
    return docker.DockerClient(base_url=stack.docker_host, version="auto", timeout=60)


def image_present(stack, reference: str) -> bool:
    client = docker_client(stack)
    try:
        client.images.get(reference)
        return True
    except docker.errors.ImageNotFound:
        return False
    finally:
        client.close()


def remove_image(stack, reference: str) -> None:
    """Remove the image for real: containers made from it first (else removal only untags it)."""
    client = docker_client(stack)
    try:
        for container in client.containers.list(all=True, filters={"ancestor": reference}):
            container.remove(force=True)
        client.images.remove(reference, force=True)
    except docker.errors.ImageNotFound:
        pass
    finally:
        client.close()
