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
        # Lifting a sign-in lockout early: django-axes' failed attempts.
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
    ],
}


def create_roles(apps, schema_editor) -> None:
    # Permissions are normally made after the last migration; the groups need them now.
    for label in ("conversations", "axes"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, names in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        for name in names:
            app_label, _, codename = name.rpartition(".")
            group.permissions.add(
                Permission.objects.get(
                    content_type__app_label=app_label or "conversations", codename=codename
                )
            )


def remove_roles(apps, schema_editor) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("axes", "0010_accessattemptexpiration"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("conversations", "0007_staff_bases_audit_permissions"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
