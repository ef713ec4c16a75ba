"""Notes and tags (0014_notes_tags) and the list page's columns (0014_list_page) were made
side by side; neither touches what the other does."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0014_list_page"),
        ("conversations", "0014_notes_tags"),
    ]

    operations = []
