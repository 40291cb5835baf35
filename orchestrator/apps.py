from django.apps import AppConfig
from django.db.models.signals import post_migrate

from .security.roles import ensure_roles


def _ensure_roles(sender, **kwargs) -> None:
    ensure_roles()


class OrchestratorConfig(AppConfig):
    name = "orchestrator"
    verbose_name = "Container orchestrator"

    def ready(self) -> None:
        # After every migrate and every test flush, so the role groups always exist.
        post_migrate.connect(_ensure_roles, sender=self, dispatch_uid="orchestrator.ensure_roles")
