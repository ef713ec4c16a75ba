"""The roles a shop sets up: viewer, exporter, administrator, as groups of permissions.

A copy of conversations.permissions.ROLES as it was when written, as migrations must be;
`roles_ensure()` brings the groups up to date with the current ROLES.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEWER = ["view_conversation"]
EXPORTER = [*VIEWER, "export_conversation"]
ROLES = {
    "viewer": VIEWER,
    "exporter": EXPORTER,
    "administrator": [
        *EXPORTER,
        "change_conversation",
        "hold_conversation",
        "delete_conversation",
        "view_message",
        "view_timelineevent",
        "view_ingestkey",
        "add_ingestkey",
        "change_ingestkey",
        "revoke_ingestkey",
        "view_rejectedframe",
        "reapply_rejectedframe",
        "view_auditlog",
    ],
}


def create_roles(apps, schema_editor) -> None:
    # Permissions are normally made after the last migration; the groups need them now.
    app_config = apps.get_app_config("conversations")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(
                content_type__app_label="conversations", codename__in=codenames
            )
        )


def remove_roles(apps, schema_editor) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("conversations", "0005_staff_bases_audit_permissions"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
