"""Celery application: configuration comes from Django settings (CELERY_*)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")

app = Celery("orchestrator")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Tasks live beside their room's code; they are sent by name, never imported.
app.autodiscover_tasks(["orchestrator.pulls", "orchestrator.containers"])
# An agent (manage.py agent) reports its gateway's facts and that it is alive.
app.steps["worker"].add("orchestrator.gateways.heartbeat:Heartbeat")
# An agent answers checks, container actions and output requests beside its pull pool.
app.steps["worker"].add("orchestrator.control.consumer:ControlConsumer")
# An agent reports its containers' states as the daemon's events say they change.
app.steps["worker"].add("orchestrator.containers.watch:ContainerWatch")
