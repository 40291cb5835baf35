"""The instance form in a browser: pasting an ECR URI, field errors, phone width and labels."""

from __future__ import annotations

import pytest

from orchestrator.models import ContainerInstance

from .conftest import PHONE, fields_without_help, horizontal_overflow, log_in, screenshot, unlabelled_fields

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ECR_URI = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:1.4"


def paste(page, selector: str, text: str) -> None:
    """Put ``text`` on the clipboard and press Ctrl+V in the field, as a person pastes."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.evaluate("text => navigator.clipboard.writeText(text)", text)
    page.locator(selector).focus()
    page.keyboard.press("Control+V")


def test_pasting_an_ecr_uri_fills_the_fields_and_shows_the_ecr_help(worker_env, page, operator):
    log_in(page, "otto-operator", "pw-otto-operator")
    page.goto("/instances/new/")
    paste(page, "#paste-uri", ECR_URI)

    image_name = page.get_by_label("Image name")
    page.wait_for_function("() => document.querySelector('#id_image_name').value !== ''")
    assert image_name.input_value() == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app"
    assert page.get_by_label("Image tag").input_value() == "1.4"
    assert page.get_by_label("Authentication registry URL").input_value() == (
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/"
    )
    assert page.get_by_label("Authentication username").input_value() == "AWS"
    help_text = page.locator("#registry-kind-help").inner_text()
    assert help_text.startswith("Amazon ECR (private): ")
    assert "aws ecr get-login-password" in help_text
    assert page.locator("#paste-uri-error").inner_text() == ""

    # Every field has a label and a help text; the examples list every registry kind.
    assert unlabelled_fields(page) == []
    assert fields_without_help(page, "#instance-form") == []
    page.get_by_text("What to enter for each registry").click()
    for label in ("Docker Hub", "Amazon ECR (private)", "GitHub Container Registry", "Azure Container Registry"):
        assert page.get_by_role("heading", name=label, exact=True).is_visible()
    page.get_by_text("What to enter for each registry").click()

    page.get_by_label("Container name").fill("ecr-app")
    screenshot(page, "instance-form.png")


def test_a_bad_reference_gets_an_error_next_to_the_field_and_keeps_the_other_values(stack, worker_env, page, operator):
    log_in(page, "otto-operator", "pw-otto-operator")
    page.goto("/instances/new/")
    page.get_by_label("Container name").fill("bad-ref")
    page.get_by_label("Image name").fill("team/App")
    page.get_by_label("Image tag").fill("1.0")
    page.get_by_label("Authentication registry URL").fill(stack.registry)
    page.get_by_label("Authentication username").fill(stack.registry_username)
    page.get_by_label("Password", exact=True).fill("typed-password-kept-nowhere")
    page.get_by_role("button", name="Download").click()
    page.get_by_label("Image download retries").fill("3")
    page.get_by_role("button", name="Save").click()

    page.wait_for_load_state()
    field = page.locator("#id_image_name")
    assert "is-invalid" in field.get_attribute("class")
    assert field.get_attribute("aria-invalid") == "true"
    error = page.locator("#div_id_image_name .invalid-feedback")
    assert error.is_visible()
    assert "lowercase" in error.inner_text()
    # Tied to the field for screen readers, and drawn right under it.
    assert error.get_attribute("id") in field.get_attribute("aria-describedby").split()
    field_box, error_box = field.bounding_box(), error.bounding_box()
    assert 0 <= error_box["y"] - (field_box["y"] + field_box["height"]) < 40
    # What was typed is still there, except the password.
    assert field.input_value() == "team/App"
    assert page.get_by_label("Container name").input_value() == "bad-ref"
    assert page.get_by_label("Image tag").input_value() == "1.0"
    assert page.get_by_label("Authentication registry URL").input_value() == stack.registry
    assert page.get_by_label("Authentication username").input_value() == stack.registry_username
    assert page.get_by_label("Image download retries").input_value() == "3"
    assert page.get_by_label("Password", exact=True).input_value() == ""
    assert "typed-password-kept-nowhere" not in page.content()
    assert not ContainerInstance.objects.exists()


def test_the_form_works_at_phone_width(worker_env, page, operator):
    page.set_viewport_size(PHONE)
    log_in(page, "otto-operator", "pw-otto-operator")
    # The menu collapses behind a button that names itself.
    toggle = page.get_by_role("button", name="Toggle navigation")
    assert toggle.is_visible()
    toggle.click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New container instance").click()
    page.wait_for_url("**/instances/new/")
    assert horizontal_overflow(page) == 0
    paste(page, "#paste-uri", ECR_URI)
    page.wait_for_function("() => document.querySelector('#id_image_name').value !== ''")
    assert horizontal_overflow(page) == 0, "the filled form scrolls sideways at 375 px"
    save = page.get_by_role("button", name="Save")
    save.scroll_into_view_if_needed()
    box = save.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_check_access_shows_an_answer_that_came_after_the_page_stopped_waiting(stack, worker, page, operator, settings):
    # The POST cannot wait at all, so the answer can only come through the button's polling.
    settings.CONTROL_WAIT_SECONDS = 0
    image_name, tag = stack.images["busybox"].rsplit(":", 1)
    log_in(page, "otto-operator", "pw-otto-operator")
    page.goto("/instances/new/")
    page.get_by_label("Container name").fill("checked")
    page.get_by_label("Image name").fill(image_name)
    page.get_by_label("Image tag").fill(tag)
    page.get_by_label("Authentication registry URL").fill(stack.registry)
    page.get_by_label("Authentication username").fill(stack.registry_username)
    page.get_by_label("Password", exact=True).fill(stack.registry_password)
    page.get_by_role("button", name="Check access").click()
    result = page.locator("#check-result .alert-success")
    result.wait_for(timeout=30_000)
    assert "Access works" in result.inner_text() and "sha256:" in result.inner_text()
    assert not ContainerInstance.objects.exists()  # a check saves nothing
