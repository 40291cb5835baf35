"""The agent's control consumer: checks, container actions and output requests, beside the pull pool.

The requests on ``gw.<name>.control`` are not run by Celery's pool: a thread
of the agent consumes that queue itself and hands each request to a small pool
of its own (``AGENT_CONTROL_THREADS``). With one pool, eight running pulls
would hold every thread (and the prefetch limit would hold the next message
back), and a Stop would wait for a pull to end. A request is acknowledged when
it is received: it is short, and one lost with a dying agent is a page that
says "no answer yet", which the user retries.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from celery import bootsteps
from django.conf import settings
from kombu import Exchange, Queue

from orchestrator.models.gateways import control_queue, pull_queue

from . import remote
from .ask import CONTROL_TASK
from .handlers import handle

log = logging.getLogger(__name__)


def run_request(request_id: str) -> None:
    """Take the request from the console, carry it out, answer it (all through the agent API)."""
    try:
        request = remote.take(request_id)
        if request is None:
            return
        log.info("control request %s: %s", request_id, request.kind)
        remote.answer(request_id, handle(request))
    except Exception:  # one request failing must not end the consumer; the page says "no answer yet"
        log.exception("control request %s failed", request_id)


class ControlConsumer(bootsteps.StartStopStep):
    """Registered in orchestrator/celery.py; runs only in an agent (a worker that knows its gateway)."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent, **kwargs) -> None:
        super().__init__(parent, **kwargs)
        self.app = parent.app
        self.gateway = parent.app.conf.get("console_gateway")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    def start(self, parent) -> None:
        if not self.gateway:
            return
        self._pool = ThreadPoolExecutor(settings.AGENT_CONTROL_THREADS, thread_name_prefix="control")
        self._thread = threading.Thread(target=self._run, name="control-consumer", daemon=True)
        self._thread.start()
        log.info("control requests of gateway %s: %s threads", self.gateway, settings.AGENT_CONTROL_THREADS)

    def stop(self, parent) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)

    def _run(self) -> None:
        name = control_queue(self.gateway)
        # Declared as Celery declares a queue named in send_task(queue=...), so both sides meet.
        queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
        pause = 1.0
        while not self._stop.is_set():
            try:
                with self.app.connection_for_read() as conn:
                    conn.ensure_connection(max_retries=1)
                    with conn.Consumer([queue], callbacks=[self._on_message], accept=["json"]):
                        pause = 1.0
                        while not self._stop.is_set():
                            try:
                                conn.drain_events(timeout=1)
                            except TimeoutError:
                                pass
            except Exception as exc:  # the broker went away: try again, a little later each time
                log.warning(
                    "control consumer of %s: broker unavailable (%s); retrying", self.gateway, type(exc).__name__
                )
                if self._stop.wait(pause):
                    return
                pause = min(pause * 2, 30.0)

    def _on_message(self, body, message) -> None:
        message.ack()
        task = message.headers.get("task")
        try:
            args = body[0]
        except (IndexError, KeyError, TypeError):
            log.warning("control consumer of %s: a message that is not a task; dropped", self.gateway)
            return
        if task == CONTROL_TASK and args:
            self._pool.submit(run_request, str(args[0]))
        elif task:
            # Sent here by an older console (a converge): it belongs with the pulls.
            self.app.send_task(task, tuple(args), queue=pull_queue(self.gateway), retry=False)
        else:
            log.warning("control consumer of %s: a message without a task name; dropped", self.gateway)
