"""Store compressed blobs and journal frames without PostgreSQL's own TOAST compression.

Batches and packs are zstd-compressed already, so pglz only burns the server's CPU finding
that out; journal frames live for a moment, and compressing them costs more than it saves.
"""

from django.db import migrations

COLUMNS = [
    ("conversations_rrwebbatch", "data"),
    ("conversations_recordingpack", "data"),
    ("conversations_recordingpack", "index"),
    ("conversations_journalentry", "data"),
]


def storage(mode: str):
    def apply(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for table, column in COLUMNS:
            schema_editor.execute(
                f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET STORAGE {mode}'
            )

    return apply


class Migration(migrations.Migration):
    dependencies = [("conversations", "0005_journal")]

    operations = [migrations.RunPython(storage("EXTERNAL"), storage("EXTENDED"))]
