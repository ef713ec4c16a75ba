"""Console errors and failed requests: counters on Conversation, and PageError rows.

Derived at ingest from new rrweb batches only: conversations stored before this migration
keep zero counts and no rows (their events are intact; nothing is backfilled).
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('conversations', '0013_storage_compaction'),
    ]

    operations = [
        migrations.AddField(
            model_name='conversation',
            name='console_error_total',
            field=models.IntegerField(default=0, help_text='Console errors the recording holds (warnings not counted).'),
        ),
        migrations.AddField(
            model_name='conversation',
            name='network_error_total',
            field=models.IntegerField(default=0, help_text='Failed requests the recording holds (network errors, status 400+).'),
        ),
        migrations.CreateModel(
            name='PageError',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event_index', models.IntegerField()),
                ('position', models.IntegerField(help_text="The event's place in its batch.")),
                ('ts', models.BigIntegerField(help_text="When, on the recording's clock (epoch ms).")),
                ('kind', models.CharField(choices=[('console', 'Console'), ('network', 'Network')], max_length=16)),
                ('level', models.CharField(max_length=16)),
                ('message', models.TextField()),
                ('url', models.TextField(blank=True)),
                ('method', models.CharField(blank=True, max_length=16)),
                ('status', models.IntegerField(blank=True, help_text='None when no answer came.', null=True)),
                ('duration_ms', models.IntegerField(blank=True, null=True)),
                ('conversation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='page_errors', to='conversations.conversation')),
            ],
            options={
                'ordering': ['ts', 'event_index', 'position'],
                'constraints': [models.UniqueConstraint(fields=('conversation', 'event_index', 'position'), name='page_error_unique_event')],
            },
        ),
    ]
