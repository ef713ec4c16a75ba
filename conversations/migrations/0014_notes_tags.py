"""Notes pinned to a moment of a replay, and who may write them and tags.

Exporters and administrators annotate (notes and tags); administrators also delete anyone's
note. As in 0008, a copy of what conversations.permissions.ROLES adds, as it was when
written. On PostgreSQL, notes get a full-text index like messages' (0004).
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations, models


ADDED = {
    "exporter": ["annotate_conversation"],
    "administrator": ["annotate_conversation", "delete_conversationnote"],
}
# The expression must be the one SearchVector("text", config="simple") builds in
# selectors._conversation_search, or PostgreSQL will not use the index.
NOTE_SEARCH_INDEX = (
    "CREATE INDEX IF NOT EXISTS note_text_search ON conversations_conversationnote "
    "USING gin ((to_tsvector('simple'::regconfig, COALESCE(text, ''))))"
)


def _role_permissions(apps):
    """Each role's group (where it exists) with the permissions this migration gives it."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ADDED.items():
        for group in Group.objects.filter(name=role):
            yield group, Permission.objects.filter(
                content_type__app_label="conversations", codename__in=codenames
            )


def grant(apps, schema_editor) -> None:
    # Permissions are normally made after the last migration; the groups need them now.
    app_config = apps.get_app_config("conversations")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    for group, permissions in _role_permissions(apps):
        group.permissions.add(*permissions)


def revoke(apps, schema_editor) -> None:
    for group, permissions in _role_permissions(apps):
        group.permissions.remove(*permissions)


def search_index(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(NOTE_SEARCH_INDEX)


def search_index_drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS note_text_search")


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0013_storage_compaction'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='conversation',
            options={'ordering': ['-first_seen_at', '-id'], 'permissions': [('export_conversation', 'Can export conversations'), ('hold_conversation', 'Can set or lift legal hold'), ('annotate_conversation', 'Can add notes and tags to conversations')]},
        ),
        migrations.AlterField(
            model_name='auditlog',
            name='action',
            field=models.CharField(choices=[('view', 'Viewed a replay'), ('export', 'Exported'), ('import', 'Imported'), ('purge', 'Purged'), ('delete', 'Deleted by staff'), ('legal_hold', 'Set or lifted legal hold'), ('revoke_key', 'Revoked an ingest key'), ('reapply', 'Re-applied rejected frames'), ('login_failed', 'Failed to sign in'), ('lockout', 'Locked out after failed sign-ins'), ('note_add', 'Added a note'), ('note_delete', 'Deleted a note'), ('tags', 'Changed tags')], editable=False, max_length=16),
        ),
        migrations.CreateModel(
            name='ConversationNote',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('author_name', models.CharField(blank=True, max_length=150)),
                ('offset_ms', models.BigIntegerField(help_text='Milliseconds from the start of the recording (what the replay page shows).')),
                ('text', models.TextField()),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('author', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('conversation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notes', to='conversations.conversation')),
            ],
            options={
                'ordering': ['offset_ms', 'created_at', 'id'],
                'constraints': [models.CheckConstraint(condition=models.Q(('offset_ms__gte', 0)), name='note_offset_not_negative')],
            },
        ),
        migrations.RunPython(grant, revoke),
        migrations.RunPython(search_index, search_index_drop),
    ]
