"""The pull task. Sent by name (``orchestrator.pull_image``, see :mod:`.actions`); found by Celery's autodiscovery."""

from __future__ import annotations

import logging
import socket

from celery import shared_task
from celery.exceptions import Reject

from orchestrator.agent.client import Unreachable

from . import runner

log = logging.getLogger(__name__)


@shared_task(bind=True, name="orchestrator.pull_image", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def pull_image(self, job_id: int) -> str:
    try:
        return runner.run(job_id, self.request.hostname or socket.gethostname())
    except Unreachable:
        # The console could not be asked to claim the job (its client has already waited, with backoff):
        # the message goes back on the queue, and the job stays queued on the console until then.
        log.warning("pull job %s: the console is unreachable; the task goes back on the queue", job_id)
        raise Reject(requeue=True) from None
