"""Each pull job keeps the retry budget it runs with (the instance's at queue time)."""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def copy_budgets(apps, schema_editor):
    # Jobs made before this migration get their instance's budget of today: the best there is.
    PullJob = apps.get_model("orchestrator", "PullJob")
    ContainerInstance = apps.get_model("orchestrator", "ContainerInstance")
    budget = ContainerInstance.objects.filter(pk=OuterRef("instance_id")).values("download_retries")[:1]
    PullJob.objects.update(download_retries=Subquery(budget))


class Migration(migrations.Migration):
    dependencies = [
        ("orchestrator", "0005_roles"),
    ]

    operations = [
        migrations.AddField(
            model_name="pulljob",
            name="download_retries",
            field=models.PositiveIntegerField(default=5),
        ),
        migrations.RunPython(copy_budgets, migrations.RunPython.noop),
    ]
