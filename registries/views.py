"""JSON endpoints about registries: decode a pasted image URI."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .decode import decode_uri
from .kinds import get_kind
from .reference import ReferenceError

MAX_URI_LENGTH = 2048


def json_error(status: int, code: str, message: str, **extra) -> JsonResponse:
    """The JSON endpoints' error shape: {"error": {"code", "message"}, ...}."""
    return JsonResponse({"error": {"code": code, "message": message}, **extra}, status=status)


def unauthenticated() -> JsonResponse:
    # JSON clients get 401 rather than a redirect to the login page.
    return json_error(401, "unauthenticated", "Log in first.")


@require_GET
@never_cache
def decode(request):
    """GET ?uri=... -> the form fields a pasted reference fills in, or 400 with the form's message."""
    if not request.user.is_authenticated:
        return unauthenticated()
    uri = request.GET.get("uri", "")
    if len(uri) > MAX_URI_LENGTH:
        return json_error(400, "invalid_reference", f"An image URI is at most {MAX_URI_LENGTH} characters.")
    try:
        decoded = decode_uri(uri)
    except ReferenceError as exc:
        return JsonResponse({"error": {"code": "invalid_reference", "message": str(exc), "part": exc.part}}, status=400)
    kind = get_kind(decoded.kind)
    return JsonResponse(
        {
            **decoded.as_form_fields(),
            "digest": decoded.digest,
            "kind": kind.slug,
            "kind_label": kind.label,
            "help": kind.help,
        }
    )
