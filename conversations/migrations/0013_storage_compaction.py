"""Storage compaction, for short conversations above all (bench/storage.py):

- RecordingDictionary: what the first packs of many conversations share, the dictionary a
  conversation's first pack is compressed against;
- payloads kept as sent (a conversation's summary, a message's original, a timeline event's
  frame) stored as compressed JSON rather than in JSON columns: about half the space.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import conversations.fields

PAYLOADS = [
    ("Conversation", "conversations_conversation", "summary"),
    ("Message", "conversations_message", "original"),
    ("TimelineEvent", "conversations_timelineevent", "envelope"),
]


def payload_columns(to: str):
    """On PostgreSQL, jsonb becomes its text as UTF-8 bytes, or back; SQLite's AlterFields
    rebuild its tables instead."""
    using = {
        "bytea": "convert_to({column}::text, 'UTF8')",
        "jsonb": "convert_from({column}, 'UTF8')::jsonb",
    }[to]

    def apply(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for _, table, column in PAYLOADS:
            cast = using.format(column=f'"{column}"')
            schema_editor.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE {to} USING {cast}')

    return apply


def compress_payloads(apps, schema_editor) -> None:
    """Write every stored payload again: the field reads the JSON text and writes it compressed."""
    for model_name, _, column in PAYLOADS:
        model = apps.get_model("conversations", model_name)
        ids = list(
            model.objects.exclude(**{f"{column}__isnull": True})
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for start in range(0, len(ids), 500):
            rows = list(model.objects.filter(pk__in=ids[start : start + 500]).only("pk", column))
            model.objects.bulk_update(rows, [column])


def decompress_payloads(apps, schema_editor) -> None:
    """Undo compress_payloads: plain JSON text again (bytes on PostgreSQL, text on SQLite)."""
    import json

    postgresql = schema_editor.connection.vendor == "postgresql"
    for model_name, table, column in PAYLOADS:
        model = apps.get_model("conversations", model_name)
        field = model._meta.get_field(column)
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f'SELECT id, "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL')
            rows = cursor.fetchall()
        for pk, value in rows:
            text = json.dumps(field.from_db_value(value, None, schema_editor.connection))
            schema_editor.execute(
                f'UPDATE "{table}" SET "{column}" = %s WHERE id = %s',
                [text.encode() if postgresql else text, pk],
            )


def dictionary_storage(mode: str):
    """A dictionary is zstd-compressed already: spare PostgreSQL's TOAST compression (0006)."""

    def apply(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(
                'ALTER TABLE "conversations_recordingdictionary" '
                f'ALTER COLUMN "data" SET STORAGE {mode}'
            )

    return apply


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0012_journal_sha256'),
    ]

    operations = [
        migrations.CreateModel(
            name='RecordingDictionary',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('data', models.BinaryField(help_text="The dictionary's text, zstd-compressed.")),
                ('size', models.IntegerField(help_text="Bytes of the dictionary's text.")),
                ('sample_count', models.IntegerField(help_text='Conversations it was built from.')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'verbose_name_plural': 'recording dictionaries',
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.RunPython(dictionary_storage("EXTERNAL"), dictionary_storage("EXTENDED")),
        # Each direction's PostgreSQL column change runs before the AlterFields (which cannot
        # cast between jsonb and bytea themselves); SQLite's are table rebuilds.
        migrations.RunPython(payload_columns("bytea"), migrations.RunPython.noop),
        migrations.AlterField(
            model_name='conversation',
            name='summary',
            field=conversations.fields.CompressedJSONField(blank=True, help_text='The newest summary, as sent.', null=True),
        ),
        migrations.AlterField(
            model_name='message',
            name='original',
            field=conversations.fields.CompressedJSONField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='timelineevent',
            name='envelope',
            field=conversations.fields.CompressedJSONField(help_text='The whole frame, as sent.'),
        ),
        migrations.RunPython(migrations.RunPython.noop, payload_columns("jsonb")),
        migrations.RunPython(compress_payloads, decompress_payloads),
        migrations.AddField(
            model_name='recordingpack',
            name='dictionary',
            field=models.ForeignKey(blank=True, db_index=False, help_text="The shared dictionary of a conversation's first pack (which has no base).", null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='conversations.recordingdictionary'),
        ),
    ]
