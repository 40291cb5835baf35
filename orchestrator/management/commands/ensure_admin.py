"""Create the first administrator if there is none (used by `make run`)."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create an admin account unless one exists; DJANGO_SUPERUSER_* variables set its name and password."

    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "admin")
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email=email, password=password)
        if generated:
            # Shown once, on the terminal of the person who started the console; never logged.
            self.stdout.write(self.style.WARNING(f"Created admin account '{username}' with password: {password}"))
            self.stdout.write("Write it down now; it is not shown again. Change it under /admin/.")
        else:
            self.stdout.write(f"Created admin account '{username}' from DJANGO_SUPERUSER_USERNAME/PASSWORD.")
