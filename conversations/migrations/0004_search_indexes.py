"""Full-text search indexes, on PostgreSQL only (SQLite searches by word matching)."""

from django.db import migrations

# The expressions must be the ones SearchVector(..., config="simple") builds in
# selectors._conversation_search, or PostgreSQL will not use the indexes.
INDEXES = {
    "message_body_search": (
        "conversations_message",
        "to_tsvector('simple'::regconfig, COALESCE(body, ''))",
    ),
    "participant_search": (
        "conversations_participant",
        "to_tsvector('simple'::regconfig, COALESCE(name, '') || ' ' || COALESCE(email, ''))",
    ),
}


def create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, (table, expression) in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (({expression}))"
        )


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("conversations", "0003_recording_packs")]

    operations = [migrations.RunPython(create, drop)]
