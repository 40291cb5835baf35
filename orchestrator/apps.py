from django.apps import AppConfig, apps
from django.conf import settings
from django.db.models.signals import post_migrate

from .security.roles import ensure_roles


def _ensure_roles(sender, **kwargs) -> None:
    from .audit.record import quiet

    # The roles are defined in code (security/roles.py); putting them in place is not a person's decision.
    with quiet():
        ensure_roles()
    # A console always has a gateway: `local` when there is none (a new database, a test flush).
    gateway = apps.get_model("orchestrator", "Gateway")
    if not gateway.objects.exists():
        gateway.objects.create(name="local")


class OrchestratorConfig(AppConfig):
    name = "orchestrator"
    verbose_name = "Container orchestrator"

    def ready(self) -> None:
        # After every migrate and every test flush, so the role groups always exist.
        post_migrate.connect(_ensure_roles, sender=self, dispatch_uid="orchestrator.ensure_roles")
        if settings.ORCHESTRATOR_ROLE == "agent":
            # The audit log records what people do on the console; an agent writes no rows to record.
            return
        from .audit.record import connect_receivers

        connect_receivers()
