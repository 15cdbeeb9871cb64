# The usage table's pages keep 10% free on PostgreSQL (issue #14, docs/benchmarks.md), so a
# claim's UPDATE (the lease and the token, no indexed column) can write the row's new version
# in the same page as a HOT update, without a new entry in each of the table's indexes.
# Instant: only pages written from now on are filled to 90%. Nothing elsewhere (SQLite).

from django.db import migrations


def _fillfactor(statement):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            table = apps.get_model("billflow_usage", "UsageEvent")._meta.db_table
            schema_editor.execute(statement % schema_editor.quote_name(table))

    return run


class Migration(migrations.Migration):
    dependencies = [("billflow_usage", "0009_usage_limits")]

    operations = [
        migrations.RunPython(
            _fillfactor("ALTER TABLE %s SET (fillfactor = 90)"),
            _fillfactor("ALTER TABLE %s RESET (fillfactor)"),
            elidable=False,
        )
    ]
