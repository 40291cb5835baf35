"""The agent API's plumbing: one error shape, JSON bodies read within limits, and the view decorator.

Every answer is JSON, errors included (``{"error": {"code", "message"}}``, the shape of the console's other
JSON endpoints), so the agent never has to parse an HTML error page. Bad input is a 4xx, never a 500: the
body's size is checked before it is read, and what JSON accepts but a database refuses (NaN, lone
surrogates, NUL characters) is refused here or by :mod:`.schema`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from registries.views import json_error

from .auth import gateway_required

# The largest body any endpoint takes; a batch of 100 progress events with their layers fits easily.
MAX_BODY = 1024 * 1024


class ApiError(Exception):
    """An answer other than success; raised anywhere in a view, turned into the JSON error by :func:`endpoint`."""

    def __init__(self, status: int, code: str, message: str, **extra) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def response(self) -> JsonResponse:
        return json_error(self.status, self.code, self.message, **self.extra)


def invalid(message: str) -> ApiError:
    """A body that does not say what the endpoint expects; the message names the field, never its value."""
    return ApiError(400, "invalid_request", message)


def not_found(what: str) -> ApiError:
    # One answer for "no such row" and "another gateway's row": a foreign token learns nothing.
    return ApiError(404, "not_found", f"This gateway has no such {what}.")


def _no_constant(name: str):
    # json.loads accepts NaN and Infinity by default; no database column takes them.
    raise ValueError(f"{name} is not JSON")


def read_json(request) -> dict:
    """The request's body as a JSON object; an empty body is ``{}``. Raises ApiError (400, 413)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise invalid("Content-Length is not a number.") from None
    if length < 0:
        raise invalid("Content-Length is not a number.")
    if length > MAX_BODY:
        raise ApiError(413, "too_large", f"The body is larger than {MAX_BODY} bytes.")
    try:
        body = request.body
    except RequestDataTooBig:
        raise ApiError(413, "too_large", f"The body is larger than {MAX_BODY} bytes.") from None
    if len(body) > MAX_BODY:
        raise ApiError(413, "too_large", f"The body is larger than {MAX_BODY} bytes.")
    if not body.strip():
        return {}
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; deep nesting a RecursionError
        raise ApiError(400, "invalid_json", "The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The body must be a JSON object.")
    return data


def endpoint(*methods: str) -> Callable:
    """An agent API view: the gateway's token first (:mod:`.auth`), then the method, then the view.

    CSRF-exempt because no cookie authenticates here: a browser's session gets nothing from these URLs.
    Never cached: orders and control requests carry secrets.
    """

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def run(request, *args, **kwargs):
            if request.method not in methods:
                response = json_error(405, "method_not_allowed", f"Use {' or '.join(methods)}.")
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return view(request, *args, **kwargs)
            except ApiError as error:
                return error.response()

        return csrf_exempt(never_cache(gateway_required(run)))

    return decorate
