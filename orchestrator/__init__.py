"""The container orchestrator console: Django project and container-instance app."""

from .celery import app as celery_app

__all__ = ("celery_app",)
