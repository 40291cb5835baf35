"""A first pull from the browser: the form, the live status page, and a wrong password."""

from __future__ import annotations

import time

import pytest

from orchestrator.models import PullJob
from tests.e2e.helpers import image_present, make_instance
from tests.stack import push_random_image

from .conftest import DESKTOP, PHONE, horizontal_overflow, log_in, screenshot, unlabelled_fields
from .slowlink import SlowLink

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Records what the status page showed after every htmx swap: [state, value of the progress bar].
RECORD_STATUS = """
window.__samples = [];
function __sample() {
  var box = document.getElementById('pull-status');
  if (!box) { return; }
  var bar = document.getElementById('pull-progress');
  var sample = [box.dataset.state, bar ? bar.getAttribute('value') : null];
  var last = window.__samples[window.__samples.length - 1];
  if (!last || last[0] !== sample[0] || last[1] !== sample[1]) { window.__samples.push(sample); }
}
document.addEventListener('DOMContentLoaded', function () {
  __sample();
  new MutationObserver(__sample).observe(document.body, {childList: true, subtree: true, attributes: true});
});
"""


@pytest.fixture
def slow_registry(stack):
    """The stack's registry behind an 8 MB/s link, so a pull lasts a few seconds."""
    link = SlowLink(stack.registry, bytes_per_second=8_000_000)
    yield link.address
    link.close()


def test_an_operator_creates_an_instance_and_watches_it_pull(stack, worker, page, operator, slow_registry):
    # Fresh random layers: nothing of this image is in the daemon yet, so every byte is downloaded.
    pushed = push_random_image(stack, "browser/app", f"v{time.monotonic_ns()}", layers=3, layer_mb=8)
    reference = pushed.replace(stack.registry, slow_registry, 1)
    image_name, tag = reference.rsplit(":", 1)
    page.add_init_script(RECORD_STATUS)
    log_in(page, "otto-operator", "pw-otto-operator")

    page.get_by_role("link", name="New container instance").first.click()
    assert page.get_by_role("heading", name="New container instance").is_visible()
    assert unlabelled_fields(page) == []
    page.get_by_label("Container name").fill("web")
    page.get_by_label("Image name").fill(image_name)
    page.get_by_label("Image tag").fill(tag)
    page.get_by_label("Authentication registry URL").fill(slow_registry)
    page.get_by_label("Authentication username").fill(stack.registry_username)
    page.get_by_label("Password", exact=True).fill(stack.registry_password)

    # Keyboard only from here: Tab from the password field reaches Save, Enter submits.
    save = page.get_by_role("button", name="Save")
    for _ in range(40):
        page.keyboard.press("Tab")
        if save.evaluate("button => button === document.activeElement"):
            break
    else:
        raise AssertionError("Tab never reached the Save button")
    page.keyboard.press("Enter")

    page.wait_for_url("**/pulls/*/")
    status = page.locator("#pull-status")
    status.and_(page.locator('[data-state="succeeded"]')).wait_for(timeout=120_000)
    job = PullJob.objects.get()
    assert job.state == "succeeded", job.as_json()

    samples = page.evaluate("window.__samples")
    states = [state for state, _ in samples]
    assert states[0] in ("queued", "running"), samples
    assert states[-1] == "succeeded", samples
    values = [int(value) for _, value in samples if value is not None]
    assert values == sorted(values), f"the progress bar went backwards: {samples}"
    assert values[-1] == 100
    assert any(0 < value < 100 for value in values), f"the bar never showed a step between 0 and 100: {samples}"
    assert page.locator("#pull-percent").inner_text() == "100%"
    assert page.locator("#pull-digest").inner_text() == job.digest
    assert job.digest.startswith("sha256:")
    assert stack.registry_password not in page.content()
    assert image_present(stack, reference)
    screenshot(page, "pull-succeeded.png")
    page.set_viewport_size(PHONE)
    assert horizontal_overflow(page) == 0, "the status page scrolls sideways at 375 px"
    page.set_viewport_size(DESKTOP)

    # The list shows it with its registry kind and the state of that pull.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Instances").click()
    row = page.locator("tr", has=page.get_by_role("link", name="web", exact=True))
    assert "Succeeded" in row.inner_text()
    assert row.locator(".kind-badge").inner_text() == "Docker Registry v2"


def test_a_wrong_password_shows_auth_failed_on_the_status_page(stack, worker, page, operator):
    instance = make_instance(stack, "busybox", password="revoked-token-for-browser", name="edge", download_retries=2)
    log_in(page, "otto-operator", "pw-otto-operator")
    page.goto(instance.get_absolute_url())
    page.get_by_role("button", name="Pull again").click()

    page.wait_for_url("**/pulls/*/")
    page.locator('#pull-status[data-state="failed"]').wait_for(timeout=60_000)
    error = page.locator("#pull-error")
    assert error.get_attribute("role") == "alert"
    text = error.inner_text()
    assert text.startswith("auth_failed:"), text
    job = PullJob.objects.get(instance=instance)
    assert job.error_code == "auth_failed" and job.error_message in text
    # Wrong credentials are not retried, and the password appears nowhere.
    assert job.attempt == 1
    assert "revoked-token-for-browser" not in page.content()
    # The list says the same at a glance.
    page.goto("/")
    row = page.locator("tr", has=page.get_by_role("link", name="edge", exact=True))
    assert "Failed" in row.inner_text() and "auth_failed" in row.inner_text()
