"""Console errors (0014_console_errors) were made beside notes, tags and the list page's
columns; neither touches what the other does."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0014_console_errors"),
        ("conversations", "0015_merge_notes_list_page"),
    ]

    operations = []
