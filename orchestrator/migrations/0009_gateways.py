"""Gateways; every existing instance goes to the gateway `local`, and names are unique per gateway."""

import django.core.validators
import django.db.models.deletion
import orchestrator.models.instances
from django.db import migrations, models


def create_local(apps, schema_editor):
    apps.get_model("orchestrator", "Gateway").objects.get_or_create(name="local")


class Migration(migrations.Migration):
    dependencies = [
        ("orchestrator", "0008_audit_entries"),
    ]

    operations = [
        migrations.CreateModel(
            name="Gateway",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "name",
                    models.CharField(
                        help_text="A short name, e.g. 'plant-3-line-a'. It names the gateway's queues, so it cannot change.",
                        max_length=63,
                        unique=True,
                        validators=[
                            django.core.validators.RegexValidator(
                                "^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
                                "Use lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit (it names the gateway's task queues).",
                            )
                        ],
                    ),
                ),
                ("token_hash", models.CharField(blank=True, editable=False, max_length=64)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("last_seen", models.DateTimeField(blank=True, help_text="The agent's last heartbeat.", null=True)),
                ("facts", models.JSONField(blank=True, default=dict)),
            ],
            options={
                "ordering": ["name"],
            },
        ),
        migrations.RunPython(create_local, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="containerinstance",
            name="name",
            field=models.CharField(
                help_text="The name of the container on the gateway, e.g. 'web' or 'modbus-bridge'. Letters, digits, '_', '.', '-'.",
                max_length=128,
                validators=[
                    django.core.validators.RegexValidator(
                        "^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$",
                        "Use letters, digits, '_', '.' and '-', starting with a letter or digit (Docker's rule for container names).",
                    )
                ],
                verbose_name="container name",
            ),
        ),
        migrations.AddField(
            model_name="containerinstance",
            name="gateway",
            field=models.ForeignKey(
                default=orchestrator.models.instances.default_gateway,
                help_text="The Docker host the container runs on; its agent pulls the image.",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="instances",
                to="orchestrator.gateway",
            ),
        ),
        migrations.AddConstraint(
            model_name="containerinstance",
            constraint=models.UniqueConstraint(fields=("gateway", "name"), name="one_name_per_gateway"),
        ),
    ]
