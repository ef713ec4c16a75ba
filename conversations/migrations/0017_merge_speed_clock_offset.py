"""The clock offset kept on the conversation (0014_speed_clock_offset) was made beside notes,
the list page's columns and console errors; neither touches what the other does."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0014_speed_clock_offset"),
        ("conversations", "0016_merge_console_errors"),
    ]

    operations = []
