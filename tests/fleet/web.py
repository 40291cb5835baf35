"""The fleet's web process through HTTP, as a browser uses it."""

from __future__ import annotations

import re

import requests


class WebClient:
    """The web process through HTTP, as a browser uses it: a session cookie and the CSRF token."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    @classmethod
    def login(cls, base_url: str, username: str, password: str) -> WebClient:
        client = cls(base_url)
        client.get("/accounts/login/")
        response = client.post("/accounts/login/", {"username": username, "password": password})
        assert response.status_code == 302 and "/accounts/login/" not in response.headers["Location"], (
            f"login failed: {response.status_code} {response.text[:500]}"
        )
        return client

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=30, allow_redirects=False, **kwargs)

    def post(self, path: str, data: dict) -> requests.Response:
        token = self.session.cookies.get("csrftoken", "")
        return self.session.post(
            self.base_url + path,
            data={**data, "csrfmiddlewaretoken": token},
            headers={"Referer": self.base_url + path},
            timeout=30,
            allow_redirects=False,
        )

    def json(self, path: str) -> dict:
        response = self.get(path)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text[:500]}"
        return response.json()

    def gateway_ids(self) -> dict[str, int]:
        """The gateway choices of the instance form: name -> the value it posts."""
        page = self.get("/instances/new/").text
        select = re.search(r'<select name="gateway".*?</select>', page, re.S)
        assert select, "the instance form has no gateway field"
        return {name: int(pk) for pk, name in re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', select[0])}

    def gateways(self) -> dict[str, dict]:
        """/gateways.json by name."""
        return {entry["name"]: entry for entry in self.json("/gateways.json")["gateways"]}

    def pull(self, job_id: int) -> dict:
        return self.json(f"/pulls/{job_id}.json")
