# The usage table keeps only the indexes a query uses (issue #14, docs/benchmarks.md): no
# LIKE index on the identifier, no index of the content type alone (bfu_event_source_idx leads
# with it) nor of the metric alone, and the group's index only where a group is set; the
# content type's foreign key is no longer checked by the database (see the model).
#
# On PostgreSQL this is done in place: indexes dropped and one created, the identifier's
# unique constraint renamed, and no foreign key re-validated over the whole ledger (which
# Django's AlterField would do, holding a lock for as long). Elsewhere (SQLite) Django's own
# operations rebuild the table.

import django.db.models.deletion
from django.db import migrations, models

TABLE = "billflow_usage_usageevent"
#: The names Django gave them in 0001 (derived from the table and column names).
OLD = {
    "like": "billflow_usage_usageevent_identifier_ae5c4529_like",
    "unique": "billflow_usage_usageevent_identifier_key",
    "metric": "billflow_usage_usageevent_metric_id_7b55c159",
    "content_type": "billflow_usage_usageevent_source_content_type_id_0986befa",
    "group": "billflow_usage_usageevent_group_id_8f2e0b87",
    "content_type_fk": "billflow_usage_usage_source_content_type__0986befa_fk_django_co",
}

POSTGRESQL_FORWARD = f"""
DROP INDEX IF EXISTS "{OLD["like"]}";
ALTER TABLE "{TABLE}" RENAME CONSTRAINT "{OLD["unique"]}" TO "bfu_event_identifier_unique";
DROP INDEX IF EXISTS "{OLD["metric"]}";
DROP INDEX IF EXISTS "{OLD["content_type"]}";
ALTER TABLE "{TABLE}" DROP CONSTRAINT IF EXISTS "{OLD["content_type_fk"]}";
DROP INDEX IF EXISTS "{OLD["group"]}";
CREATE INDEX "bfu_event_group_idx" ON "{TABLE}" ("group_id") WHERE "group_id" IS NOT NULL;
"""

POSTGRESQL_BACKWARD = f"""
DROP INDEX "bfu_event_group_idx";
CREATE INDEX "{OLD["group"]}" ON "{TABLE}" ("group_id");
CREATE INDEX "{OLD["content_type"]}" ON "{TABLE}" ("source_content_type_id");
ALTER TABLE "{TABLE}" ADD CONSTRAINT "{OLD["content_type_fk"]}" FOREIGN KEY ("source_content_type_id")
  REFERENCES "django_content_type" ("id") DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX "{OLD["metric"]}" ON "{TABLE}" ("metric_id");
ALTER TABLE "{TABLE}" RENAME CONSTRAINT "bfu_event_identifier_unique" TO "{OLD["unique"]}";
CREATE INDEX "{OLD["like"]}" ON "{TABLE}" ("identifier" varchar_pattern_ops);
"""

OPERATIONS = [
    migrations.AlterField(
        model_name="usageevent",
        name="group",
        field=models.ForeignKey(
            blank=True,
            db_index=False,
            null=True,
            on_delete=django.db.models.deletion.PROTECT,
            related_name="events",
            to="billflow_usage.deliverygroup",
        ),
    ),
    migrations.AlterField(
        model_name="usageevent",
        name="identifier",
        field=models.CharField(max_length=100),
    ),
    migrations.AlterField(
        model_name="usageevent",
        name="metric",
        field=models.ForeignKey(
            blank=True,
            db_index=False,
            null=True,
            on_delete=django.db.models.deletion.PROTECT,
            related_name="usage_events",
            to="billflow_usage.metric",
        ),
    ),
    migrations.AlterField(
        model_name="usageevent",
        name="source_content_type",
        field=models.ForeignKey(
            blank=True,
            db_constraint=False,
            db_index=False,
            null=True,
            on_delete=django.db.models.deletion.SET_NULL,
            related_name="+",
            to="contenttypes.contenttype",
        ),
    ),
    migrations.AddIndex(
        model_name="usageevent",
        index=models.Index(
            condition=models.Q(("group__isnull", False)),
            fields=["group"],
            name="bfu_event_group_idx",
        ),
    ),
    migrations.AddConstraint(
        model_name="usageevent",
        constraint=models.UniqueConstraint(
            fields=("identifier",), name="bfu_event_identifier_unique"
        ),
    ),
]


class PostgreSQLInPlace(migrations.SeparateDatabaseAndState):
    """The operations' schema changes, as the SQL above on PostgreSQL."""

    def _operations(self, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            return [migrations.RunSQL(POSTGRESQL_FORWARD, POSTGRESQL_BACKWARD)]
        return OPERATIONS

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self.database_operations = self._operations(schema_editor)
        super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self.database_operations = self._operations(schema_editor)
        super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [
        ("billflow_usage", "0006_usageevent_failed_index"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [PostgreSQLInPlace(state_operations=OPERATIONS)]
