"""Create the first administrator if there is none (run by `make run` and by the compose web service)."""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

PASSWORD_FILE_NAME = "initial-admin-password"  # noqa: S105 - a file name, not a password


def write_password_file(path: Path, password: str) -> None:
    """Write a new file only its owner can read; never through a file or link that was there before."""
    # There is no administrator (or this would not run), so an old file holds a password nobody
    # can use. Unlinking removes a planted link itself, not what it points to.
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")


class Command(BaseCommand):
    help = (
        "Create an admin account unless one exists; DJANGO_SUPERUSER_* variables set its name and password. "
        f"A generated password goes to DATA_DIR/{PASSWORD_FILE_NAME} (mode 0600), and to the screen on a terminal."
    )

    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "admin")
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        if password:
            User.objects.create_superuser(username=username, email=email, password=password)
            self.stdout.write(f"Created admin account '{username}' from DJANGO_SUPERUSER_USERNAME/PASSWORD.")
            return

        password = secrets.token_urlsafe(12)
        path = Path(settings.DATA_DIR) / PASSWORD_FILE_NAME
        # One transaction: an account whose password could not be kept anywhere is not created,
        # and the next start tries again.
        with transaction.atomic():
            User.objects.create_superuser(username=username, email=email, password=password)
            try:
                write_password_file(path, password)
            except OSError as exc:
                raise CommandError(
                    f"No admin account created: its generated password could not be written to {path} "
                    f"({exc.strerror or exc}). Make DATA_DIR writable, or set DJANGO_SUPERUSER_PASSWORD."
                ) from exc

        # Standard output is a log when the console runs as a service (`docker compose logs`
        # keeps it, and whoever reads the logs would have the account): the password is
        # shown only to a person at a terminal.
        if self.stdout.isatty():
            self.stdout.write(self.style.WARNING(f"Created admin account '{username}' with password: {password}"))
            self.stdout.write(f"It is also in {path} (readable only by this user account).")
        else:
            where = f"its password is in {path}, readable only by the user account the console runs as."
            self.stdout.write(self.style.WARNING(f"Created admin account '{username}'; {where}"))
        self.stdout.write("Sign in, change the password under /admin/, then delete that file.")
