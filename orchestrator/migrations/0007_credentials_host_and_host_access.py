"""Stored secrets are bound to their login host; the host_access permission."""

from django.db import migrations, models

from registries.credentials import login_host


def bind_stored_secrets(apps, schema_editor):
    """Stored secrets belong to the login host their instance names today."""
    ContainerInstance = apps.get_model("orchestrator", "ContainerInstance")
    with_secret = ContainerInstance.objects.exclude(registry_password="", aws_secret_access_key="")
    for instance in with_secret:
        instance.credentials_host = login_host(instance.image_name, instance.registry_url)
        instance.save(update_fields=["credentials_host"])


class Migration(migrations.Migration):
    dependencies = [
        ("orchestrator", "0006_pulljob_download_retries"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="containerinstance",
            options={
                "ordering": ["name"],
                "permissions": [
                    ("pull_containerinstance", "Can pull the image of a container instance"),
                    ("host_access", "Can give containers access to the host"),
                ],
            },
        ),
        migrations.AddField(
            model_name="containerinstance",
            name="credentials_host",
            field=models.CharField(blank=True, editable=False, max_length=300),
        ),
        migrations.RunPython(bind_stored_secrets, migrations.RunPython.noop),
    ]
