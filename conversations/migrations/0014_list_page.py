"""The list page: saved filters, watched conversations, the page each customer was on."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def first_hrefs(apps, schema_editor) -> None:
    """Each stored conversation's first page, from its batch rows and its packs' indexes."""
    from conversations.storage import pack_index

    Conversation = apps.get_model("conversations", "Conversation")
    RRWebBatch = apps.get_model("conversations", "RRWebBatch")
    RecordingPack = apps.get_model("conversations", "RecordingPack")
    first: dict[int, tuple[int, str]] = {}

    def offer(conversation_id: int, event_index: int, href: str) -> None:
        if href and (conversation_id not in first or event_index < first[conversation_id][0]):
            first[conversation_id] = (event_index, href)

    rows = RRWebBatch.objects.exclude(href="").values_list("conversation_id", "event_index", "href")
    for conversation_id, event_index, href in rows.iterator():
        offer(conversation_id, event_index, href)
    for pack in RecordingPack.objects.only("conversation_id", "index").iterator():
        for entry in pack_index(bytes(pack.index)):
            offer(pack.conversation_id, entry.event_index, entry.href)
    for conversation_id, (event_index, href) in first.items():
        Conversation.objects.filter(pk=conversation_id).update(
            first_href=href, first_href_index=event_index
        )


def views_from_audit(apps, schema_editor) -> None:
    """Replay page views the audit log already holds count as watched."""
    AuditLog = apps.get_model("conversations", "AuditLog")
    Conversation = apps.get_model("conversations", "Conversation")
    ConversationView = apps.get_model("conversations", "ConversationView")
    seen: dict[tuple[int, str], list] = {}
    records = AuditLog.objects.filter(action="view", user__isnull=False).values_list(
        "user_id", "conversation_uuid", "at"
    )
    for user_id, uuid, at in records.iterator():
        span = seen.setdefault((user_id, uuid), [at, at])
        span[0], span[1] = min(span[0], at), max(span[1], at)
    ids = dict(
        Conversation.objects.filter(uuid__in={uuid for _, uuid in seen}).values_list("uuid", "id")
    )
    ConversationView.objects.bulk_create(
        [
            ConversationView(
                user_id=user_id, conversation_id=ids[uuid], first_viewed_at=a, last_viewed_at=b
            )
            for (user_id, uuid), (a, b) in seen.items()
            if uuid in ids
        ],
        batch_size=1000,
    )


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0013_storage_compaction'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='conversation',
            name='first_href',
            field=models.TextField(blank=True, db_default='', default=''),
        ),
        migrations.AddField(
            model_name='conversation',
            name='first_href_index',
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.CreateModel(
            name='ConversationView',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('first_viewed_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('last_viewed_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('conversation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='views', to='conversations.conversation')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-last_viewed_at', '-id'],
                'constraints': [models.UniqueConstraint(fields=('user', 'conversation'), name='conversation_view_unique')],
            },
        ),
        migrations.CreateModel(
            name='SavedFilter',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('query', models.CharField(blank=True, max_length=2000)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='saved_filters', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['name', 'id'],
                'constraints': [models.UniqueConstraint(fields=('user', 'name'), name='saved_filter_unique_name')],
            },
        ),
        migrations.RunPython(first_hrefs, migrations.RunPython.noop),
        migrations.RunPython(views_from_audit, migrations.RunPython.noop),
    ]
