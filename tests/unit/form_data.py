"""The instance form as a browser posts it with the defaults untouched: the base of the form tests."""

from __future__ import annotations


def instance_form(**overrides) -> dict:
    data = {
        "name": "web",
        "enabled": "",
        "image_name": "myuser/myapp",
        "image_tag": "1.2",
        "registry_url": "",
        "registry_username": "",
        "registry_password": "",
        "download_retries": 5,
        "download_retry_interval": 30000,
        "download_timeout": 500,
    }
    data.update(overrides)
    return data
