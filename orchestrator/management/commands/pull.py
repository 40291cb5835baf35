"""`manage.py pull NAME [--wait]`: queue a pull from the terminal and optionally follow it."""

import time

from django.core.management.base import BaseCommand, CommandError

from orchestrator.models import ContainerInstance, PullJob
from orchestrator.pulls.actions import queue_pull


class Command(BaseCommand):
    help = "Queue a pull of a container instance's image; with --wait, show progress and exit 1 on failure."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the container instance's name")
        parser.add_argument("--gateway", help="the instance's gateway, when several have an instance of that name")
        parser.add_argument("--wait", action="store_true", help="follow the pull until it ends")
        parser.add_argument("--poll", type=float, default=0.5, help="seconds between progress lines (default 0.5)")

    def handle(self, *args, name, gateway, wait, poll, **options):
        if not name.strip() or len(name) > 128 or any(ord(ch) < 32 for ch in name):
            raise CommandError("NAME must be a container instance's name (letters, digits, '_', '.', '-').")
        named = ContainerInstance.objects.filter(name=name).select_related("gateway").order_by("gateway__name")
        if gateway:
            named = named.filter(gateway__name=gateway)
        matches = list(named[:10])
        if not matches:
            known = ", ".join(ContainerInstance.objects.values_list("name", flat=True)[:10]) or "none yet"
            raise CommandError(f"No container instance is named {name!r} (known: {known}).")
        if len(matches) > 1:
            # Names are unique per gateway: say which gateways have one.
            where = ", ".join(instance.gateway.name for instance in matches)
            raise CommandError(f"Instances named {name!r} are on several gateways ({where}): add --gateway NAME.")
        instance = matches[0]
        job, created = queue_pull(instance)
        self.stdout.write(
            f"{'Queued' if created else 'Following the pull already under way:'} pull #{job.pk} of {job.reference}"
        )
        if not wait:
            return
        last = None
        while True:
            job = PullJob.objects.get(pk=job.pk)
            line = self._describe(job)
            if line != last:
                self.stdout.write(line)
                last = line
            if not job.is_active:
                break
            time.sleep(poll)
        if job.state == PullJob.State.SUCCEEDED:
            self.stdout.write(self.style.SUCCESS(f"Pulled {job.reference} {job.digest}"))
            if job.container_state:  # the container phase that followed (orchestrator/containers/phase.py)
                self.stdout.write(job.message)
            return
        raise CommandError(
            f"{job.state}: {job.error_code or job.state}: {job.error_message or job.message}", returncode=1
        )

    @staticmethod
    def _describe(job: PullJob) -> str:
        if job.progress is not None:
            amount = f"{job.progress}%"
        elif job.layers_total:
            amount = f"{job.layers_done}/{job.layers_total} layers"
        else:
            amount = "…"
        return f"[{job.state}] attempt {job.attempt} {amount} {job.message}"
