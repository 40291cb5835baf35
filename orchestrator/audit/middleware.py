"""Keeps the request of the moment for the audit receivers (Django sends role changes without it)."""

from .record import during


class AuditRequestMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with during(request):
            return self.get_response(request)
