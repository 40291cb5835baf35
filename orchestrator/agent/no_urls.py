"""The agent serves no pages (orchestrator.conf.agent)."""

urlpatterns: list = []
