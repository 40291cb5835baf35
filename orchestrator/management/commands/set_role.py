"""`manage.py set_role USER ROLE`: make a user a viewer, an operator or an admin of the console."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from orchestrator.audit.record import quiet, record, runner
from orchestrator.security.roles import ROLE_PERMISSIONS, ensure_roles


class Command(BaseCommand):
    help = "Give a user exactly one console role: viewer, operator or admin (admins also get the admin site)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", choices=sorted(ROLE_PERMISSIONS))

    def handle(self, *args, username, role, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(
                f"There is no user named {username!r}; create one with createsuperuser or the admin."
            ) from None
        with transaction.atomic():  # the change and its audit entry commit together
            before = {"groups": sorted(user.groups.values_list("name", flat=True)), "is_staff": user.is_staff}
            with quiet():  # one entry for the whole command, below, instead of one per step from the receivers
                ensure_roles()
                user.groups.remove(*Group.objects.filter(name__in=ROLE_PERMISSIONS))
                user.groups.add(Group.objects.get(name=role))
                # The admin site needs is_staff; viewers and operators work in the console only.
                user.is_staff = role == "admin"
                user.save(update_fields=["is_staff"])
            after = {"groups": sorted(user.groups.values_list("name", flat=True)), "is_staff": user.is_staff}
            record(
                None,
                "role.change",
                changes={key: [before[key], after[key]] for key in before if before[key] != after[key]},
                username=runner(),
                message=f"manage.py set_role: user {username} is now {role}",
            )
        self.stdout.write(f"{username} is now {role}.")
