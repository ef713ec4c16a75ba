"""Storage compaction, for short conversations above all (bench/storage.py): RecordingDictionary,
what the first packs of many conversations share, the dictionary a conversation's first pack
is compressed against.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


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
        ('conversations', '0009_staff_asset_proxy'),
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
        migrations.AddField(
            model_name='recordingpack',
            name='dictionary',
            field=models.ForeignKey(blank=True, db_index=False, help_text="The shared dictionary of a conversation's first pack (which has no base).", null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='conversations.recordingdictionary'),
        ),
    ]
