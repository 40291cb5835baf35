"""After a failed attempt a job waits queued, due at not_before."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orchestrator", "0009_gateways"),
    ]

    operations = [
        migrations.AddField(
            model_name="pulljob",
            name="not_before",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
