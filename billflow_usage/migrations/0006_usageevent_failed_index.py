# billflow_status and the Prometheus gauges count failed rows by code: a partial index on
# failed rows (a few) answers that without scanning the ledger, and costs nothing to pending
# or sent rows.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billflow_usage", "0005_processedmetererrorevent"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="usageevent",
            index=models.Index(
                condition=models.Q(("status", "failed")),
                fields=["last_error_code"],
                name="bfu_event_failed_idx",
            ),
        ),
    ]
