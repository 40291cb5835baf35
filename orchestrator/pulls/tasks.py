"""The pull task. Sent by name (``orchestrator.pull_image``, see :mod:`.actions`); found by Celery's autodiscovery."""

from __future__ import annotations

import socket

from celery import shared_task

from . import runner


@shared_task(bind=True, name="orchestrator.pull_image", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def pull_image(self, job_id: int) -> str:
    return runner.run(job_id, self.request.hostname or socket.gethostname())
