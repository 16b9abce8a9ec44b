"""The table of the default cache (webapp/core/cache.py), made where `migrate` runs, so every
install and every server process has it without a separate `createcachetable` step."""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("core", "0006_pipeline_maps_and_open_runs")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
