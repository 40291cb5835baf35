"""Create the viewer, operator and admin groups (orchestrator.security.roles); post_migrate keeps them current."""



from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

from orchestrator.security.roles import ensure_roles


def create_roles(apps, schema_editor):
    # Permissions are normally made after migrate; make them now so the groups can hold them.
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, apps=apps)
    ensure_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("orchestrator", "0004_pull_attempts"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
