"""JSON endpoints about registries: decode a pasted image URI."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .decode import decode_uri
from .kinds import get_kind
from .reference import ReferenceError

MAX_URI_LENGTH = 2048


def _unauthenticated() -> JsonResponse:
    return JsonResponse({"error": {"code": "unauthenticated", "message": "Log in first."}}, status=401)


@require_GET
@never_cache
def decode(request):
    """GET ?uri=... -> the form fields a pasted reference fills in, or 400 with the form's message."""
    if not request.user.is_authenticated:
        return _unauthenticated()
    uri = request.GET.get("uri", "")
    if len(uri) > MAX_URI_LENGTH:
        return JsonResponse(
            {
                "error": {
                    "code": "invalid_reference",
                    "message": f"An image URI is at most {MAX_URI_LENGTH} characters.",
                }
            },
            status=400,
        )
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
