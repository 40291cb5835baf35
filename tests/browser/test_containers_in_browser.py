"""The container settings and the container's page in a real browser: folded sections, live state and output."""

from __future__ import annotations

import docker
import pytest

from orchestrator.containers.daemon import LABEL_INSTANCE
from orchestrator.models import ContainerInstance

from .conftest import log_in, screenshot, unlabelled_fields

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def api(stack):
    client = docker.APIClient(base_url=stack.docker_host, version="auto", timeout=60)

    def clear() -> None:
        for summary in client.containers(all=True, filters={"label": LABEL_INSTANCE}):
            client.remove_container(summary["Id"], force=True)

    clear()
    yield client
    clear()
    client.close()


def test_an_operator_runs_a_container_and_watches_its_output(stack, worker, page, operator, api):
    image_name, tag = stack.images["busybox"].rsplit(":", 1)
    log_in(page, "otto-operator", "pw-otto-operator")
    page.goto("/instances/new/")
    assert unlabelled_fields(page) == []
    page.get_by_label("Container name").fill("ticker")
    page.get_by_label("Image name").fill(image_name)
    page.get_by_label("Image tag").fill(tag)
    page.get_by_label("Authentication registry URL").fill(stack.registry)
    page.get_by_label("Authentication username").fill(stack.registry_username)
    page.get_by_label("Password", exact=True).fill(stack.registry_password)

    # Folded sections hide their fields until opened.
    network = page.get_by_label("Network mode")
    assert not network.is_visible()
    page.get_by_role("button", name="Networking").click()
    network.wait_for(state="visible")
    network.fill("none")
    page.get_by_role("button", name="Command and environment").click()
    page.get_by_label("Entrypoint override").fill(
        "sh,-c,echo \"hello $WHO\"; trap 'exit 0' TERM; while true; do echo tick; sleep 1; done"
    )
    page.get_by_label("Environment variables").fill("WHO=browser, with a comma")
    page.get_by_role("button", name="Resources").click()
    page.get_by_label("Memory").fill("32m")
    screenshot(page, "container-settings.png")
    page.get_by_role("button", name="Save").click()

    # The status page goes on from the pull to the container, then stops polling.
    page.wait_for_url("**/pulls/*/")
    page.locator('#container-phase[data-container-state="running"]').wait_for(timeout=120_000)
    assert page.locator('#pull-status[data-state="succeeded"]').is_visible()

    instance = ContainerInstance.objects.get(name="ticker")
    page.goto(instance.get_absolute_url())
    # The fragment loads by itself, then refreshes: the output grows while we watch.
    page.locator('#container-status[data-state="running"]').wait_for(timeout=20_000)
    logs = page.locator("#container-logs")
    logs.wait_for()
    assert "hello browser, with a comma" in logs.inner_text()
    ticks = logs.inner_text().count("tick")
    page.wait_for_function(
        f"() => (document.getElementById('container-logs')?.textContent.match(/tick/g) || []).length > {ticks}",
        timeout=20_000,
    )
    screenshot(page, "container-running.png")

    page.get_by_role("button", name="Stop", exact=True).click()
    page.locator('#container-status[data-state="exited"]').wait_for(timeout=30_000)
    assert not api.inspect_container("ticker")["State"]["Running"]
    page.get_by_role("button", name="Start", exact=True).click()
    page.locator('#container-status[data-state="running"]').wait_for(timeout=30_000)
    assert api.inspect_container("ticker")["HostConfig"]["Memory"] == 32 * 1024 * 1024
